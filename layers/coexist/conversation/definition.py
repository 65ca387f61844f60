"""The conversation workflow's definition: one file, one substitution, for every environment."""

from __future__ import annotations

from pathlib import Path

from coexist.resources import CONVERSATION_DEFINITION

FUNCTION_PLACEHOLDER = "ConversationFunction"


def definition_path(root: Path | None = None) -> Path:
    return (root or Path(__file__).resolve().parents[3]) / CONVERSATION_DEFINITION


def render(function_arn: str, root: Path | None = None) -> str:
    """The definition with its task resource filled in (CDK does the same substitution)."""
    return definition_path(root).read_text().replace("${" + FUNCTION_PLACEHOLDER + "}", function_arn)
