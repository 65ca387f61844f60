"""Outbound policy (docs/ARCHITECTURE.md rule 2): checked before any call to Meta, refusals are typed.

A refused message is never sent: Meta would charge for nothing or reject it (131047).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from coexist.domain import coexistence, consent

APPROVED = "APPROVED"
NOT_SENDABLE_STATES = frozenset({coexistence.DISCONNECTED, coexistence.OFFBOARDED, coexistence.DELETED})


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str
    http_status: int = 409


@dataclass(frozen=True)
class SendContext:
    """What the policy needs to know about the chat, the customer and the number."""

    free_form: bool
    window_open: bool
    number_state: str
    # The customer's consent, purpose -> state (coexist.domain.consent; a missing purpose is unknown).
    consent: dict[str, str] = field(default_factory=dict)
    purpose: str | None = None  # the purpose the send names, beside its template's category's
    template_status: str | None = None  # None: not a template, or not found
    template_category: str | None = None
    template_name: str | None = None
    template_params_expected: int | None = None
    template_params_given: int | None = None


def check(context: SendContext) -> Refusal | None:
    if context.number_state in NOT_SENDABLE_STATES:
        return Refusal(
            "number_offboarded",
            f"This number is {context.number_state} from Coexistence; reconnect it before sending.",
        )
    if context.free_form:
        if not context.window_open:
            return Refusal(
                "window_closed",
                "The customer-service window is closed (no customer message in the last 24 hours): "
                "only an approved template can be sent now.",
            )
        return None
    if context.template_status is None:
        return Refusal("template_not_approved", f"Template {context.template_name!r} is not known for this number's account in that language; sync templates or check the name.", 422)
    if context.template_status != APPROVED:
        return Refusal("template_not_approved", f"Template {context.template_name!r} is {context.template_status}, not APPROVED.")
    if (
        context.template_params_expected is not None
        and context.template_params_given is not None
        and context.template_params_expected != context.template_params_given
    ):
        return Refusal(
            "template_parameters",
            f"Template {context.template_name!r} expects {context.template_params_expected} body parameter(s), "
            f"{context.template_params_given} given.",
            422,
        )
    # Marketing and reminders need the customer's grant; utility only an absence of withdrawal.
    refused = consent.check_send(context.template_category, context.purpose, context.consent)
    if refused:
        return Refusal(refused.code, refused.message)
    return None
