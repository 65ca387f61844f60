"""Meta's Graph API errors: codes, titles and details as the Cloud API words them, and the body.

Clients must branch on `code`, never on the text; the text is only there so logs and tests read
like the real thing. Titles follow Meta's error-code reference (see META_FACTS.md).
"""

from __future__ import annotations

import secrets
import string

# code → (title, details, HTTP status)
CATALOG: dict[int, tuple[str, str, int]] = {
    1: ("An unknown error has occurred.", "Please retry your request later.", 500),
    2: ("Service temporarily unavailable", "Please retry your request later.", 503),
    100: ("Invalid parameter", "Invalid parameter", 400),
    190: ("Invalid OAuth access token - Cannot parse access token", "", 401),
    368: ("Temporarily blocked for policies violations", "The account is temporarily blocked for policy violations.", 400),
    130429: ("Rate limit hit", "Cloud API message throughput has been reached.", 400),
    131000: ("Something went wrong", "Message failed to send due to an unknown error.", 500),
    131008: ("Required parameter is missing", "A required parameter is missing.", 400),
    131009: ("Parameter value is not valid", "One or more parameter values are invalid.", 400),
    131026: (
        "Message undeliverable",
        "Unable to deliver message. Reasons can include: the recipient phone number is not a WhatsApp phone number; "
        "the recipient has not accepted the new Terms of Service; the recipient is using an old WhatsApp version.",
        400,
    ),
    131030: (
        "Recipient phone number not in allowed list",
        "Recipient's phone number is not whitelisted: add the recipient's phone number to a recipient list, then try again.",
        400,
    ),
    131047: (
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
        400,
    ),
    131049: (
        "This message was not delivered to maintain healthy ecosystem engagement.",
        "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
        400,
    ),
    131050: (
        "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.",
        "The recipient has stopped marketing messages from this business.",
        400,
    ),
    131051: ("Unsupported message type", "Message type is not currently supported.", 400),
    131056: (
        "(Business Account, Consumer Account) pair rate limit hit",
        "Too many messages sent from the sender phone number to the same recipient phone number in a short period of time.",
        400,
    ),
    131057: ("Account in maintenance mode", "The business account is in maintenance mode (throughput upgrade).", 400),
    132000: (
        "Number of parameters does not match the expected number of params",
        "The number of variable parameter values in the request does not match the number in the template.",
        400,
    ),
    132001: (
        "Template name does not exist in the translation",
        "The template does not exist in the specified language, or it has not been approved.",
        400,
    ),
}
_TRACE_ALPHABET = string.ascii_letters + string.digits + "_-"


def fbtrace_id() -> str:
    return "A" + "".join(secrets.choice(_TRACE_ALPHABET) for _ in range(22))


def title(code: int) -> str:
    return CATALOG.get(code, (f"Error {code}", "", 400))[0]


def http_status(code: int) -> int:
    return CATALOG.get(code, ("", "", 400))[2]


class GraphError(Exception):
    """An error the Graph API answers with; `body()` is the JSON document it sends."""

    def __init__(self, code: int, details: str | None = None, status: int | None = None, message: str | None = None):
        known_title, known_details, known_status = CATALOG.get(code, (f"Error {code}", "", 400))
        super().__init__(f"({code}) {known_title}")
        self.code = code
        self.details = details if details is not None else known_details
        self.status = status or known_status
        self.message = message

    def body(self) -> dict:
        error: dict = {"message": self.message or f"(#{self.code}) {title(self.code)}", "type": "OAuthException", "code": self.code}
        if self.code == 190 or self.status >= 500:
            # Token and server errors carry no WhatsApp error_data (see the 190 fixture).
            if self.status >= 500:
                error["is_transient"] = True
        else:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        error["fbtrace_id"] = fbtrace_id()
        return {"error": error}


def webhook_error(code: int) -> dict:
    """The error object of a `failed` status webhook (statuses[].errors[], see status_failed_131049.json)."""
    known_title, known_details, _ = CATALOG.get(code, (f"Error {code}", "", 400))
    return {
        "code": code,
        "title": known_title,
        "message": known_title,
        "error_data": {"details": known_details},
        "href": "/documentation/business-messaging/whatsapp/support/error-codes",
    }


def invalid_token() -> GraphError:
    return GraphError(190, status=401, message="Invalid OAuth access token - Cannot parse access token")
