"""Bot providers for the "bot first, then a person" conversation workflow.

    outcome = respond(provider_for(number_bot_settings), turn, load_rules())

Only the plain data types are imported here; providers (and boto3) load when a number uses them.
"""

from coexist.bots.model import (
    ACTIONS,
    CUSTOMER_ASKED,
    ESCALATE,
    ESCALATION_REASONS,
    HUMAN_ONLY_INTENT,
    LOW_CONFIDENCE,
    PERSON_BUTTON_ID,
    REPLY,
    RESOLVED,
    TOO_MANY_FAILURES,
    BotDecision,
    BotProvider,
    BotReply,
    BotTurn,
    BotUnavailable,
)

__all__ = [
    "ACTIONS", "CUSTOMER_ASKED", "ESCALATE", "ESCALATION_REASONS", "HUMAN_ONLY_INTENT", "LOW_CONFIDENCE",
    "PERSON_BUTTON_ID", "REPLY", "RESOLVED", "TOO_MANY_FAILURES",
    "BotDecision", "BotProvider", "BotReply", "BotTurn", "BotUnavailable",
]
