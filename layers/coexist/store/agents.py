"""The built-in agent directory: who can take chats, with which skills, and how loaded they are."""

from __future__ import annotations

import time

from botocore.exceptions import ClientError

from coexist.store.conditional import is_condition_failure, update_if

BY_AVAILABILITY = "by_availability"
AVAILABLE, AWAY = "available", "away"


class AgentStore:
    def __init__(self, table):
        self.table = table

    def upsert(self, agent_id: str, name: str, skills: list[str], capacity: int, numbers: list[str] | None = None) -> dict:
        """Create or update an agent's profile; a new agent starts `away`, load untouched.

        `numbers`: the phone_number_ids the agent works on (what the API lets it see and act on);
        None keeps the agent's current numbers (none for a new agent).
        """
        values = {":name": name, ":skills": sorted(set(skills)), ":capacity": capacity, ":away": AWAY, ":zero": 0}
        numbers_expression = "numbers = if_not_exists(numbers, :numbers)"
        values[":numbers"] = sorted(set(numbers or []))
        if numbers is not None:
            numbers_expression = "numbers = :numbers"
        response = self.table.update_item(
            Key={"agent_id": agent_id},
            UpdateExpression="SET #name = :name, skills = :skills, #cap = :capacity, " + numbers_expression + ", "
            "availability = if_not_exists(availability, :away), active_chats = if_not_exists(active_chats, :zero)",
            ExpressionAttributeNames={"#name": "name", "#cap": "capacity"},
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
        return response["Attributes"]

    def set_availability(self, agent_id: str, availability: str) -> dict | None:
        try:
            return self.table.update_item(
                Key={"agent_id": agent_id},
                UpdateExpression="SET availability = :a, availability_changed_at = :now",
                ConditionExpression="attribute_exists(agent_id)",
                ExpressionAttributeValues={":a": availability, ":now": int(time.time())},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as error:
            if is_condition_failure(error):
                return None
            raise

    def get(self, agent_id: str) -> dict | None:
        return self.table.get_item(Key={"agent_id": agent_id}).get("Item")

    def by_availability(self, availability: str) -> list[dict]:
        response = self.table.query(
            IndexName=BY_AVAILABILITY,
            KeyConditionExpression="availability = :a",
            ExpressionAttributeValues={":a": availability},
        )
        return response.get("Items", [])

    def all(self) -> list[dict]:
        return sorted(self.by_availability(AVAILABLE) + self.by_availability(AWAY), key=lambda a: a["agent_id"])

    def reserve(self, agent_id: str) -> bool:
        """Count one more chat against an available agent, within their capacity (atomic)."""
        return update_if(
            self.table,
            Key={"agent_id": agent_id},
            UpdateExpression="ADD active_chats :one SET last_offered_at = :now",
            ConditionExpression="availability = :available AND active_chats < #cap",
            ExpressionAttributeNames={"#cap": "capacity"},
            ExpressionAttributeValues={":one": 1, ":available": AVAILABLE, ":now": int(time.time())},
        )

    def release(self, agent_id: str) -> None:
        update_if(
            self.table,
            Key={"agent_id": agent_id},
            UpdateExpression="ADD active_chats :minus",
            ConditionExpression="active_chats > :zero",
            ExpressionAttributeValues={":minus": -1, ":zero": 0},
        )


def pick_agent(candidates: list[dict], skill: str | None, exclude: set[str]) -> list[dict]:
    """Available agents with the skill and room for one more chat, least loaded first."""
    eligible = [
        a for a in candidates
        if a["agent_id"] not in exclude
        and int(a.get("active_chats", 0)) < int(a.get("capacity", 0))
        and (skill is None or skill in a.get("skills", []))
    ]
    return sorted(eligible, key=lambda a: (int(a.get("active_chats", 0)) / max(int(a["capacity"]), 1), int(a.get("last_offered_at", 0)), a["agent_id"]))
