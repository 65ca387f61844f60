"""Reminders deployed: the scheduler role may invoke only the reminders function (and park in its
DLQ), the agent API may only create and delete the reminders' schedules and pass that role, and
the names the API is told are the ones the outbound stack creates."""

from __future__ import annotations

import json

import pytest

from tests.infrastructure.conftest import actions_of_role, statements_of_role

pytestmark = pytest.mark.infra


def _role_id(synthesised, construct) -> str:
    return synthesised.logical_id(construct)


def test_the_scheduler_role_can_only_invoke_the_reminders_function(synthesised):
    reminders = synthesised.stacks.outbound.reminders
    template = synthesised.outbound
    role_id = _role_id(synthesised, reminders.scheduler_role)
    [role] = [r for i, r in template.find_resources("AWS::IAM::Role").items() if i == role_id]
    assert role["Properties"]["RoleName"] == "coexist-dev-reminders-scheduler"
    [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"} and "aws:SourceAccount" in trust["Condition"]["StringEquals"]
    statements = statements_of_role(template, role_id)
    invoke = [s for s in statements if "lambda:InvokeFunction" in s["Action"]]
    function_id = synthesised.logical_id(reminders.function.function)
    assert [s["Resource"] for s in invoke] == [{"Fn::GetAtt": [function_id, "Arn"]}]
    assert actions_of_role(template, role_id) <= {
        "lambda:InvokeFunction", "sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl",
        "kms:Decrypt", "kms:Encrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"}


def test_the_reminders_function_has_a_fixed_name_and_no_scheduling_rights(synthesised):
    reminders = synthesised.stacks.outbound.reminders
    function = synthesised.outbound.to_json()["Resources"][synthesised.logical_id(reminders.function.function)]
    assert function["Properties"]["FunctionName"] == "coexist-dev-reminders"
    actions = actions_of_role(synthesised.outbound, _role_id(synthesised, reminders.function.role))
    assert not {a for a in actions if a.startswith(("scheduler:", "iam:"))}
    assert "sqs:SendMessage" in actions  # the outbound queue: the normal outbound path


def test_the_schedule_group_and_dlq_are_the_ones_the_api_is_told(synthesised):
    [group] = synthesised.outbound.find_resources("AWS::Scheduler::ScheduleGroup").values()
    assert group["Properties"]["Name"] == "coexist-dev-reminders"
    queues = synthesised.outbound.find_resources("AWS::SQS::Queue")
    assert any(q["Properties"].get("QueueName") == "coexist-dev-reminders-dlq" and "KmsMasterKeyId" in q["Properties"] for q in queues.values())
    api = synthesised.stacks.ingress.agent_api
    variables = synthesised.ingress.to_json()["Resources"][synthesised.logical_id(api.function)]["Properties"]["Environment"]["Variables"]
    assert variables["REMINDER_SCHEDULE_GROUP"] == "coexist-dev-reminders"
    assert variables["REMINDER_TARGET_ARN"]["Fn::Join"][1][-1] == ":function:coexist-dev-reminders"


def test_the_agent_api_may_only_create_and_delete_reminder_schedules_and_pass_their_role(synthesised):
    api = synthesised.stacks.ingress.agent_api
    statements = statements_of_role(synthesised.ingress, _role_id(synthesised, api.role))
    # (It also ends the bot phases' idle timers, in their own group: tests/infrastructure/test_conversations_stack.py.)
    scheduling = [s for s in statements if any(a.startswith("scheduler:") for a in s["Action"]) and "reminders" in json.dumps(s["Resource"])]
    assert [sorted(s["Action"]) for s in scheduling] == [["scheduler:CreateSchedule", "scheduler:DeleteSchedule"]]
    assert scheduling[0]["Resource"]["Fn::Join"][1][-1] == ":schedule/coexist-dev-reminders/*"
    [passing] = [s for s in statements if "iam:PassRole" in s["Action"]]
    assert passing["Action"] == ["iam:PassRole"]
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    assert passing["Resource"]["Fn::Join"][1][-1] == ":role/coexist-dev-reminders-scheduler"
