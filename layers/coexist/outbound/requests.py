"""What agents, bots and campaigns may ask to send, validated against Meta's limits up front.

A request that Meta would reject for its shape is refused here (HTTP 422) and never costs a call.
`graph_payload` renders the Cloud API body (`POST /{phone_number_id}/messages`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from coexist.domain import consent

TEXT_MAX = 4096
CAPTION_MAX = 1024
INTERACTIVE_BODY_MAX = 1024
HEADER_TEXT_MAX = 60
FOOTER_MAX = 60
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
LIST_BUTTON_MAX = 20
LIST_SECTIONS_MAX = 10
LIST_ROWS_MAX = 10
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
SECTION_TITLE_MAX = 24


class Strict(BaseModel):
    # What an agent or a bot sends is health data: errors name the field, never the value.
    # Built when a function first validates a request (its first send), not by every import.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, hide_input_in_errors=True, defer_build=True)


class TextRequest(Strict):
    type: Literal["text"]
    text: str = Field(min_length=1, max_length=TEXT_MAX)
    preview_url: bool = False
    reply_to: str | None = None  # wamid of the message this replies to

    def graph_object(self) -> dict:
        return {"body": self.text, "preview_url": self.preview_url}

    def display_text(self) -> str | None:
        return self.text


class MediaRequest(Strict):
    type: Literal["image", "document", "audio", "video"]
    link: str | None = Field(default=None, pattern=r"^https://")
    media_id: str | None = None
    caption: str | None = Field(default=None, max_length=CAPTION_MAX)
    filename: str | None = None
    reply_to: str | None = None

    @model_validator(mode="after")
    def _one_source(self):
        if bool(self.link) == bool(self.media_id):
            raise ValueError("give exactly one of link (https URL) or media_id")
        if self.caption and self.type == "audio":
            raise ValueError("audio messages cannot have a caption")
        if self.filename and self.type != "document":
            raise ValueError("only documents have a filename")
        return self

    def graph_object(self) -> dict:
        media: dict[str, Any] = {"link": self.link} if self.link else {"id": self.media_id}
        if self.caption:
            media["caption"] = self.caption
        if self.filename:
            media["filename"] = self.filename
        return media

    def display_text(self) -> str | None:
        return self.caption


class ReplyButton(Strict):
    id: str = Field(min_length=1, max_length=BUTTON_ID_MAX)
    title: str = Field(min_length=1, max_length=BUTTON_TITLE_MAX)


class ListRow(Strict):
    id: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=ROW_TITLE_MAX)
    description: str | None = Field(default=None, max_length=ROW_DESCRIPTION_MAX)


class ListSection(Strict):
    title: str | None = Field(default=None, max_length=SECTION_TITLE_MAX)
    rows: list[ListRow] = Field(min_length=1)


class InteractiveRequest(Strict):
    type: Literal["interactive"]
    body: str = Field(min_length=1, max_length=INTERACTIVE_BODY_MAX)
    header: str | None = Field(default=None, max_length=HEADER_TEXT_MAX)
    footer: str | None = Field(default=None, max_length=FOOTER_MAX)
    buttons: list[ReplyButton] | None = Field(default=None, min_length=1, max_length=BUTTONS_MAX)
    list_button: str | None = Field(default=None, min_length=1, max_length=LIST_BUTTON_MAX)
    sections: list[ListSection] | None = Field(default=None, min_length=1, max_length=LIST_SECTIONS_MAX)
    reply_to: str | None = None

    @model_validator(mode="after")
    def _buttons_or_list(self):
        if bool(self.buttons) == bool(self.sections):
            raise ValueError("give either buttons (reply buttons) or sections (a list), not both")
        if self.buttons:
            ids = [b.id for b in self.buttons]
            if len(set(ids)) != len(ids):
                raise ValueError("button ids must be unique")
        if self.sections:
            if not self.list_button:
                raise ValueError("a list needs list_button, the label of the button that opens it")
            rows = [r for s in self.sections for r in s.rows]
            if len(rows) > LIST_ROWS_MAX:
                raise ValueError(f"a list has at most {LIST_ROWS_MAX} rows in all")
            if len({r.id for r in rows}) != len(rows):
                raise ValueError("row ids must be unique")
            if len(self.sections) > 1 and any(not s.title for s in self.sections):
                raise ValueError("every section needs a title when there is more than one")
        return self

    def graph_object(self) -> dict:
        interactive: dict[str, Any] = {"body": {"text": self.body}}
        if self.header:
            interactive["header"] = {"type": "text", "text": self.header}
        if self.footer:
            interactive["footer"] = {"text": self.footer}
        if self.buttons:
            interactive["type"] = "button"
            interactive["action"] = {"buttons": [{"type": "reply", "reply": b.model_dump()} for b in self.buttons]}
        else:
            interactive["type"] = "list"
            interactive["action"] = {
                "button": self.list_button,
                "sections": [s.model_dump(exclude_none=True) for s in self.sections or []],
            }
        return interactive

    def display_text(self) -> str | None:
        return self.body


class TemplateLanguage(Strict):
    code: str = Field(min_length=2, max_length=15)
    policy: Literal["deterministic"] = "deterministic"


class Template(Strict):
    name: str = Field(min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$")
    language: TemplateLanguage
    components: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("language", mode="before")
    @classmethod
    def _language_code(cls, value):
        return {"code": value} if isinstance(value, str) else value

    def body_parameters(self) -> int:
        return sum(len(c.get("parameters", [])) for c in self.components if str(c.get("type", "")).lower() == "body")


class TemplateRequest(Strict):
    type: Literal["template"]
    template: Template
    # What the send is for, when its template's category does not say it all (a UTILITY template
    # sent as a reminder): the send needs the customer's consent to that purpose too.
    purpose: str | None = None

    @field_validator("purpose")
    @classmethod
    def _known_purpose(cls, value: str | None) -> str | None:
        if value is not None and value not in consent.PURPOSES:
            raise ValueError(f"purpose must be one of {', '.join(consent.PURPOSES)}")
        return value

    def graph_object(self) -> dict:
        return self.template.model_dump(exclude_none=True)

    def display_text(self) -> str | None:
        return None


SendRequest = Annotated[
    Union[TextRequest, MediaRequest, InteractiveRequest, TemplateRequest], Field(discriminator="type")
]
_ADAPTER: TypeAdapter = TypeAdapter(SendRequest, config=ConfigDict(hide_input_in_errors=True, defer_build=True))

FREE_FORM_TYPES = frozenset({"text", "image", "document", "audio", "video", "interactive"})


def parse_send_request(body: Any):
    """Raises pydantic.ValidationError with Meta's limit in the message when a rule is broken."""
    return _ADAPTER.validate_python(body)


def graph_payload(request, to: str | None, recipient: str | None = None) -> dict:
    """The Cloud API body (End User Messaging Social sends the same one).

    `to` is the customer's phone number; a customer known only by a business-scoped user id gets
    `recipient` instead (verified on Meta's "Business-scoped user IDs" page: `recipient` takes a
    BSUID or a parent BSUID, and `to` wins when both are present, so only one is ever sent).
    """
    if not to and not recipient:
        raise ValueError("a message needs a phone number or a business-scoped user id to go to")
    payload: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    payload.update({"to": to} if to else {"recipient": recipient})
    payload.update({"type": request.type, request.type: request.graph_object()})
    reply_to = getattr(request, "reply_to", None)
    if reply_to:
        payload["context"] = {"message_id": reply_to}
    return payload
