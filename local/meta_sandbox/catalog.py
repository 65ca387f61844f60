"""What the sandbox knows about the business: its phone numbers and each account's templates.

The defaults are the number and account of Meta's own example payloads (tests/fixtures/meta), so
a status webhook from the sandbox looks exactly like the ones in Meta's documentation.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

DEFAULT_WABA_ID = "102290129340398"
COEXISTENCE_MPS = 20  # Meta fixes coexistence numbers at 20 msg/s
DEFAULT_MPS = 80  # Meta's default throughput for other numbers
# Pair limit (same business number → same customer): about one message per 6 s sustained with
# bursts allowed; Meta does not publish exact figures, so both are settings.
PAIR_PERIOD_S = 6.0
PAIR_BURST = 45
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


@dataclass
class Number:
    phone_number_id: str
    display_phone_number: str
    waba_id: str = DEFAULT_WABA_ID
    coexistence: bool = False
    mps: float | None = None  # None: Meta's rule (20 for coexistence, else 80)
    pair_period_s: float = PAIR_PERIOD_S
    pair_burst: int = PAIR_BURST
    messaging_limit_tier: str = "TIER_2K"  # what GET /{phone_number_id} reports (Meta's names)
    quality_rating: str = "GREEN"

    @property
    def throughput_mps(self) -> float:
        if self.mps is not None:
            return self.mps
        return COEXISTENCE_MPS if self.coexistence else DEFAULT_MPS


@dataclass
class Template:
    name: str
    category: str  # MARKETING | UTILITY | AUTHENTICATION
    status: str = "APPROVED"  # APPROVED | PENDING | REJECTED | PAUSED | DISABLED
    language: str = "en_US"
    body: str = ""
    id: str = ""
    waba_id: str = DEFAULT_WABA_ID
    components: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.components:
            self.components = [{"type": "BODY", "text": self.body}]
        if not self.id:
            # Stable, numeric like Meta's template ids.
            self.id = str(1_000_000_000_000_000 + zlib.crc32(f"{self.waba_id}/{self.name}/{self.language}".encode()))

    @property
    def body_placeholders(self) -> int:
        """Distinct `{{n}}` (or named `{{name}}`) variables in the body: the parameters a send must fill."""
        texts = [c.get("text", "") for c in self.components if str(c.get("type", "")).upper() == "BODY"]
        return len({m.group(1) for text in texts for m in _PLACEHOLDER.finditer(text)})

    def as_graph(self) -> dict:
        """The template as `GET /{waba_id}/message_templates` lists it."""
        return {
            "name": self.name,
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "id": self.id,
            "components": self.components,
        }


def default_numbers() -> list[Number]:
    return [
        # The number in Meta's example payloads; a Coexistence number (20 msg/s).
        Number("106540352242922", "15550783881", DEFAULT_WABA_ID, coexistence=True),
        # A Cloud-API-only number on the same account (80 msg/s).
        Number("106540352242923", "15550783882", DEFAULT_WABA_ID, coexistence=False),
    ]


def default_templates(waba_id: str = DEFAULT_WABA_ID) -> list[Template]:
    return [
        Template("hello_world", "UTILITY", body="Hello World! Welcome to the WhatsApp Cloud API.", waba_id=waba_id),
        Template("appointment_reminder", "UTILITY", body="Hi {{1}}, your appointment is on {{2}}.", waba_id=waba_id),
        Template("spring_sale", "MARKETING", body="Our spring sale starts today: {{1}} off everything!", waba_id=waba_id),
        Template("new_feature", "MARKETING", status="PENDING", body="Meet our new feature.", waba_id=waba_id),
        Template("old_offer", "MARKETING", status="REJECTED", body="An offer that was never approved.", waba_id=waba_id),
        Template("login_code", "AUTHENTICATION", body="{{1}} is your verification code.", waba_id=waba_id),
    ]
