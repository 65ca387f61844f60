"""Does an identity policy allow one action on one resource? A small IAM evaluator.

What IAM does for a principal's own policies in its own account: an explicit Deny wins, then any
Allow; nothing else allows. `Action`/`NotAction` match case-insensitively, `Resource`/`NotResource`
case-sensitively, both with IAM's wildcards (`*` any run of characters, `?` one character).
A statement with a `Condition` applies only when every condition holds for the request's context
keys; an operator or key this evaluator does not know makes the condition fail, so an unknown
condition can never make a call look allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache


@lru_cache(maxsize=4096)
def _pattern(wildcard: str, ignore_case: bool) -> re.Pattern:
    translated = {"*": ".*", "?": "."}
    regex = "".join(translated.get(c, re.escape(c)) for c in wildcard)
    return re.compile(regex, (re.IGNORECASE if ignore_case else 0) | re.DOTALL)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _pattern(pattern, ignore_case).fullmatch(value) is not None


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Request:
    """One authorization request: `action` like `s3:PutObject`, a concrete resource ARN (or `*` for
    actions without resource-level permissions) and the condition keys the request carries."""

    action: str
    resource: str
    context: dict[str, str] = field(default_factory=dict)


def _operator_holds(operator: str, key: str, expected: list, context: dict[str, str]) -> bool:
    if key not in context:
        return False
    actual = context[key]
    if operator in ("StringEquals", "ArnEquals"):
        return actual in expected
    if operator in ("StringLike", "ArnLike"):
        return any(wildcard_match(e, actual) for e in expected)
    if operator == "StringEqualsIgnoreCase":
        return actual.lower() in {e.lower() for e in expected}
    return False  # an operator not modelled here never grants


def _conditions_hold(condition: dict, context: dict[str, str]) -> bool:
    return all(
        _operator_holds(operator, key, [str(v) for v in _as_list(expected)], context)
        for operator, by_key in condition.items()
        for key, expected in by_key.items()
    )


def statement_applies(statement: dict, request: Request) -> bool:
    if "Action" in statement:
        if not any(wildcard_match(a, request.action, ignore_case=True) for a in _as_list(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(wildcard_match(a, request.action, ignore_case=True) for a in _as_list(statement["NotAction"])):
            return False
    else:
        return False
    if "Resource" in statement:
        if not any(wildcard_match(r, request.resource) for r in _as_list(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(wildcard_match(r, request.resource) for r in _as_list(statement["NotResource"])):
            return False
    else:
        return False
    return _conditions_hold(statement.get("Condition", {}), request.context)


def is_allowed(statements: list[dict], request: Request) -> bool:
    applying = [s for s in statements if statement_applies(s, request)]
    if any(s.get("Effect") == "Deny" for s in applying):
        return False
    return any(s.get("Effect") == "Allow" for s in applying)
