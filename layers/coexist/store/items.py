"""Conversions between Python values and DynamoDB attribute values."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


def to_item_value(value: Any) -> Any:
    """DynamoDB rejects floats; Meta's payloads have some (locations). Decimals round-trip exactly."""
    if value is None:
        return None
    return json.loads(json.dumps(value), parse_float=Decimal)


def from_item_value(value: Any) -> Any:
    """Back to JSON-ready Python: Decimals become ints where whole, floats otherwise."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_item_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [from_item_value(v) for v in value]
    if isinstance(value, set):
        return sorted(from_item_value(v) for v in value)
    return value
