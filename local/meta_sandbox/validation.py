"""The send request as the Cloud API checks it, before anything is accepted.

Codes as Meta uses them: 131008 a required parameter is missing, 131009 a parameter value is not
valid, 100 a request the API cannot interpret at all (product, type), 132001/132000 template name
or parameters. Limits: text 4096; caption 1024; interactive body 1024, header/footer 60; reply
buttons 1–3 with unique ids and titles of 1–20; list button label ≤ 20, 1–10 sections, ≤ 10 rows in
all, row title ≤ 24, description ≤ 72.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from local.meta_sandbox.catalog import Template
from local.meta_sandbox.errors import GraphError

MESSAGE_TYPES = ("text", "image", "document", "audio", "video", "sticker", "location", "contacts", "interactive", "template", "reaction")
MEDIA_TYPES = ("image", "document", "audio", "video", "sticker")
INTERACTIVE_TYPES = ("button", "list", "cta_url", "flow", "product", "product_list", "location_request_message", "address_message", "call_permission_request")
TEXT_MAX = 4096
CAPTION_MAX = 1024
INTERACTIVE_BODY_MAX = 1024
HEADER_FOOTER_MAX = 60
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
LIST_BUTTON_MAX = 20
SECTIONS_MAX = 10
ROWS_MAX = 10
BSUID = re.compile(r"[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}")
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72


CALLBACK_DATA_MAX = 512  # biz_opaque_callback_data


@dataclass(frozen=True)
class Accepted:
    to: str
    wa_id: str
    type: str
    template: Template | None = None
    callback_data: str | None = None  # echoed in every status of the message
    user_id: str | None = None  # sent to a business-scoped user id (`recipient`) rather than a number

    @property
    def customer(self) -> str:
        """The recipient as pacing, faults and status webhooks know it."""
        return self.wa_id or self.user_id or ""


def missing(parameter: str) -> GraphError:
    return GraphError(131008, f"The parameter {parameter} is required.")


def invalid(details: str) -> GraphError:
    return GraphError(131009, details)


def _object(parent: dict, key: str, where: str) -> dict:
    value = parent.get(key)
    if value is None:
        raise missing(f"{where}{key}")
    if not isinstance(value, dict):
        raise invalid(f"Param {where}{key} must be a JSON object.")
    return value


def _text(parent: dict, key: str, where: str, maximum: int, minimum: int = 1, required: bool = True) -> str | None:
    value = parent.get(key)
    if value is None and not required:
        return None
    if value is None or (value == "" and minimum > 0):
        raise missing(f"{where}{key}")
    if not isinstance(value, str):
        raise invalid(f"Param {where}{key} must be a string.")
    if not minimum <= len(value) <= maximum:
        raise invalid(f"Param {where}{key} must be between {minimum} and {maximum} characters long.")
    return value


def validate(payload, find_template: Callable[[str, str], Template | None]) -> Accepted:
    """Check one `POST /{phone_number_id}/messages` body; raise the GraphError Meta would answer."""
    if not isinstance(payload, dict):
        raise GraphError(100, "The request body must be a JSON object.")
    if payload.get("messaging_product") != "whatsapp":
        raise GraphError(100, "The parameter messaging_product is required and must be 'whatsapp'.", message="(#100) The parameter messaging_product is required.")
    to, user_id = payload.get("to"), None
    if to in (None, "") and payload.get("recipient") not in (None, ""):
        # Meta's "Business-scoped user IDs" page: `recipient` takes a BSUID or a parent BSUID
        # (`US.13491208655302741918`, `US.ENT.…`); `to` wins when both are given.
        user_id = payload["recipient"]
        if not isinstance(user_id, str) or not BSUID.fullmatch(user_id):
            raise GraphError(100, "Param recipient must be a business-scoped user ID.")
        wa_id = ""
    else:
        if to in (None, ""):
            raise missing("to")
        if not isinstance(to, str):
            raise invalid("Param to must be a string.")
        wa_id = re.sub(r"\D", "", to)
        if not 5 <= len(wa_id) <= 20:
            raise GraphError(100, "Param to must be a phone number or a WhatsApp ID.")
    kind = payload.get("type", "text")  # Meta defaults a missing type to text
    if kind not in MESSAGE_TYPES:
        raise GraphError(100, f"Param type must be one of {{{', '.join(MESSAGE_TYPES).upper()}}}.")
    body = _object(payload, kind, "")
    template = None
    if kind == "text":
        _text(body, "body", "text.", TEXT_MAX)
    elif kind in MEDIA_TYPES:
        if not body.get("link") and not body.get("id"):
            raise missing(f"{kind}.link or {kind}.id")
        _text(body, "caption", f"{kind}.", CAPTION_MAX, minimum=0, required=False)
    elif kind == "location":
        for key in ("latitude", "longitude"):
            if body.get(key) is None:
                raise missing(f"location.{key}")
    elif kind == "contacts":
        pass  # `_object` already insists on the key; a contacts array is sent as the value
    elif kind == "reaction":
        if not body.get("message_id"):
            raise missing("reaction.message_id")
        if "emoji" not in body:
            raise missing("reaction.emoji")  # "" is allowed: it removes a reaction
    elif kind == "interactive":
        _validate_interactive(body)
    elif kind == "template":
        template = _validate_template(body, find_template)
    callback_data = payload.get("biz_opaque_callback_data")
    if callback_data is not None:
        if kind == "reaction":
            raise invalid("Param biz_opaque_callback_data is not supported for reaction messages.")
        if not isinstance(callback_data, str) or len(callback_data) > CALLBACK_DATA_MAX:
            raise invalid(f"Param biz_opaque_callback_data must be a string of at most {CALLBACK_DATA_MAX} characters.")
    return Accepted(to=to or user_id, wa_id=wa_id, type=kind, template=template, callback_data=callback_data, user_id=user_id)


def _validate_interactive(interactive: dict) -> None:
    kind = interactive.get("type")
    if not kind:
        raise missing("interactive.type")
    if kind not in INTERACTIVE_TYPES:
        raise invalid(f"Param interactive.type must be one of {{{', '.join(INTERACTIVE_TYPES)}}}.")
    header = interactive.get("header")
    if isinstance(header, dict) and header.get("type") == "text":
        _text(header, "text", "interactive.header.", HEADER_FOOTER_MAX)
    footer = interactive.get("footer")
    if isinstance(footer, dict):
        _text(footer, "text", "interactive.footer.", HEADER_FOOTER_MAX)
    if kind not in ("button", "list"):
        return  # the other interactive kinds are accepted as they are
    _text(_object(interactive, "body", "interactive."), "text", "interactive.body.", INTERACTIVE_BODY_MAX)
    action = _object(interactive, "action", "interactive.")
    if kind == "button":
        _validate_buttons(action)
    else:
        _validate_list(action)


def _validate_buttons(action: dict) -> None:
    buttons = action.get("buttons")
    if not buttons:
        raise missing("interactive.action.buttons")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= BUTTONS_MAX:
        raise invalid(f"Param interactive.action.buttons must have between 1 and {BUTTONS_MAX} elements.")
    ids = set()
    for index, button in enumerate(buttons):
        where = f"interactive.action.buttons[{index}]."
        if not isinstance(button, dict) or button.get("type") != "reply":
            raise invalid(f"Param {where}type must be 'reply'.")
        reply = _object(button, "reply", where)
        _text(reply, "title", f"{where}reply.", BUTTON_TITLE_MAX)
        identifier = _text(reply, "id", f"{where}reply.", 256)
        if identifier in ids:
            raise invalid("Buttons must have unique ids.")
        ids.add(identifier)


def _validate_list(action: dict) -> None:
    _text(action, "button", "interactive.action.", LIST_BUTTON_MAX)
    sections = action.get("sections")
    if not sections:
        raise missing("interactive.action.sections")
    if not isinstance(sections, list) or not 1 <= len(sections) <= SECTIONS_MAX:
        raise invalid(f"Param interactive.action.sections must have between 1 and {SECTIONS_MAX} elements.")
    rows_total = 0
    row_ids = set()
    for s, section in enumerate(sections):
        where = f"interactive.action.sections[{s}]."
        if not isinstance(section, dict):
            raise invalid(f"Param {where[:-1]} must be a JSON object.")
        if len(sections) > 1:
            _text(section, "title", where, ROW_TITLE_MAX)  # required once there is more than one section
        rows = section.get("rows")
        if not rows or not isinstance(rows, list):
            raise missing(f"{where}rows")
        for r, row in enumerate(rows):
            row_where = f"{where}rows[{r}]."
            if not isinstance(row, dict):
                raise invalid(f"Param {row_where[:-1]} must be a JSON object.")
            identifier = _text(row, "id", row_where, 200)
            _text(row, "title", row_where, ROW_TITLE_MAX)
            _text(row, "description", row_where, ROW_DESCRIPTION_MAX, minimum=0, required=False)
            if identifier in row_ids:
                raise invalid("Rows must have unique ids.")
            row_ids.add(identifier)
        rows_total += len(rows)
    if rows_total > ROWS_MAX:
        raise invalid(f"The list has {rows_total} rows; at most {ROWS_MAX} rows are allowed across all sections.")


def _validate_template(body: dict, find_template: Callable[[str, str], Template | None]) -> Template:
    name = _text(body, "name", "template.", 512)
    language = _object(body, "language", "template.")
    code = _text(language, "code", "template.language.", 15)
    template = find_template(name, code)
    if template is None or template.status != "APPROVED":
        raise GraphError(132001, f"template name ({name}) does not exist in {code}")
    components = body.get("components") or []
    if not isinstance(components, list):
        raise invalid("Param template.components must be an array.")
    given = sum(
        len(c.get("parameters") or [])
        for c in components
        if isinstance(c, dict) and str(c.get("type", "")).lower() == "body"
    )
    expected = template.body_placeholders
    if given != expected:
        raise GraphError(132000, f"body: number of localizable_params ({given}) does not match the expected number of params ({expected})")
    return template
