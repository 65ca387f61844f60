"""Conditional writes: the building block of exactly-once effects on at-least-once input."""

from __future__ import annotations

from botocore.exceptions import ClientError


def is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


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
