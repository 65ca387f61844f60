"""Conditional writes: the building block of exactly-once effects on at-least-once input."""

from __future__ import annotations

from functools import cache

from botocore.exceptions import ClientError


def is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


@cache
def _deserializer():
    from boto3.dynamodb.types import TypeDeserializer  # boto3's, loaded with the first table anyway

    return TypeDeserializer()


def as_stored(wire_item: dict | None) -> dict | None:
    """An item in DynamoDB's wire form (what a refusal returns, even through a Table) as the table's
    reads give it: numbers as Decimal, sets as sets. None when there was no item."""
    if not wire_item:
        return None
    deserialize = _deserializer().deserialize
    return {name: deserialize(value) for name, value in wire_item.items()}


def refused_item(error: ClientError) -> dict | None:
    """The item a write was refused for by its condition, as it is (the write asked for it with
    `ReturnValuesOnConditionCheckFailure="ALL_OLD"`, so no read is needed to learn why); None when
    there is no item. Any other error is raised again."""
    if not is_condition_failure(error):
        raise error
    return as_stored(error.response.get("Item"))


def update_if(table, **kwargs) -> bool:
    """UpdateItem that reports a failed condition as False instead of raising."""
    try:
        table.update_item(**kwargs)
        return True
    except ClientError as error:
        if is_condition_failure(error):
            return False
        raise


def raise_to(table, key: dict, attribute: str, value: int, also_set: dict | None = None) -> bool:
    """Set `attribute` to `value` only if that moves it forward in time (out-of-order safe).

    `also_set` attributes are written in the same conditional update.
    """
    names = {"#a": attribute}
    values = {":v": value}
    sets = ["#a = :v"]
    for i, (name, extra) in enumerate((also_set or {}).items()):
        names[f"#x{i}"] = name
        values[f":x{i}"] = extra
        sets.append(f"#x{i} = :x{i}")
    return update_if(
        table,
        Key=key,
        UpdateExpression="SET " + ", ".join(sets),
        ConditionExpression="attribute_not_exists(#a) OR #a < :v",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def put_if_absent(table, item: dict, key_attribute: str) -> bool:
    """PutItem only if no item has this key yet. Returns False if one already existed."""
    try:
        table.put_item(Item=item, ConditionExpression=f"attribute_not_exists({key_attribute})")
        return True
    except ClientError as error:
        if is_condition_failure(error):
            return False
        raise
