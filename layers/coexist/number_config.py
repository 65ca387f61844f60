"""What the deployment says about each business number: `COEXIST_NUMBERS`, parsed once.

The same `NumberConfig` is what the CDK configuration validates at synth (stacks/config.py), what
the sender paces and routes by, which bot answers the number and who its humans are. A setting left
out falls back to the runtime's defaults (outbound/pacing of the number: 20 msg/s when it is known to
be in Coexistence, else 80; the Cloud API; the rules bot; the built-in agent directory).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from functools import lru_cache


class Transport(StrEnum):
    GRAPH = "graph"  # Meta's Cloud API
    SOCIAL_MESSAGING = "social_messaging"  # AWS End User Messaging Social


class HumansProvider(StrEnum):
    DIRECTORY = "directory"  # the built-in agent directory
    CONNECT = "connect"  # Amazon Connect chat contacts


# AWS End User Messaging Social's id of a phone number ("phone-number-id-<hex>"), or its ARN.
SOCIAL_MESSAGING_ID = re.compile(r"^phone-number-id-([0-9a-zA-Z]+)$")
SOCIAL_MESSAGING_ARN = re.compile(r"^arn:[a-z-]+:social-messaging:[a-z0-9-]+:[0-9]{12}:phone-number-id/[0-9a-zA-Z]+$")


@dataclass(frozen=True)
class NumberConfig:
    phone_number_id: str  # Meta's id of the number
    throughput_mps: float | None = None
    transport: Transport | None = None
    social_messaging_phone_number_id: str | None = None  # "phone-number-id-<hex>" (or its ARN)
    pair_period_s: float | None = None  # per-recipient pacing overrides (rarely needed)
    pair_burst: int | None = None
    # Which bot answers (coexist.bots.factory): {"provider": "rules"} by default,
    # {"provider": "lex", "bot_id", "bot_alias_id", "locale_id"} or {"provider": "bedrock", "model_id"}.
    bot: dict | None = None
    # Who the humans are: {"provider": "directory"} (the default) or {"provider": "connect", ...}
    # (coexist.conversation.connect.ConnectHumans).
    humans: dict | None = None

    @classmethod
    def parse(cls, entry: str | int | dict, phone_number_id: str | None = None) -> "NumberConfig":
        """One number's settings; ValueError says what is wrong. A bare id is a number with defaults."""
        if isinstance(entry, (str, int)):  # Meta's ids are digits; JSON may carry them as numbers
            entry = {"phone_number_id": entry}
        if not isinstance(entry, dict):
            raise ValueError("a number's settings must be an object")
        unknown = set(entry) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown keys in a phone_numbers entry: {sorted(unknown)}")
        values = {**entry, "phone_number_id": str(entry.get("phone_number_id") or phone_number_id or "").strip()}
        if not values["phone_number_id"]:
            raise ValueError("every phone_numbers entry needs a phone_number_id")
        number_id = values["phone_number_id"]
        if values.get("transport") is not None:
            try:
                values["transport"] = Transport(values["transport"])
            except ValueError:
                raise ValueError(f"phone_numbers transport must be one of {[t.value for t in Transport]}, "
                                 f"not {values['transport']!r}") from None
        number = cls(**values)
        if number.throughput_mps is not None and not 0 < number.throughput_mps <= 1000:
            raise ValueError("phone_numbers throughput_mps must be a positive number of messages per second")
        if number.transport == Transport.SOCIAL_MESSAGING:
            origination = number.social_messaging_phone_number_id or ""
            if not (SOCIAL_MESSAGING_ID.match(origination) or SOCIAL_MESSAGING_ARN.match(origination)):
                raise ValueError(
                    "a social_messaging number needs social_messaging_phone_number_id, e.g. "
                    "phone-number-id-01234567890123456789012345678901 (End User Messaging Social console)"
                )
        if number.bot is not None and not isinstance(number.bot, dict):
            raise ValueError(f"phone_numbers bot of {number_id} must be an object")
        if number.humans is not None:
            if not isinstance(number.humans, dict):
                raise ValueError(f"phone_numbers humans of {number_id} must be an object")
            provider = number.humans.get("provider", HumansProvider.DIRECTORY.value)
            if provider not in {p.value for p in HumansProvider}:
                raise ValueError(f"phone_numbers humans of {number_id}: provider 'directory' or 'connect'")
        return number

    @property
    def humans_provider(self) -> HumansProvider:
        return HumansProvider((self.humans or {}).get("provider") or HumansProvider.DIRECTORY.value)

    @property
    def hands_to_connect(self) -> bool:
        return self.humans_provider == HumansProvider.CONNECT

    def bot_settings(self):
        """The validated bot settings (coexist.bots.factory), the rules bot when none are given."""
        from coexist.bots.factory import bot_settings  # pydantic: loaded only when a number has a bot

        try:
            return bot_settings(self.bot)
        except ValueError as error:  # pydantic's ValidationError is a ValueError
            raise ValueError(f"phone_numbers bot of {self.phone_number_id}: {error}") from None

    def settings(self) -> dict:
        """This number's entry of `COEXIST_NUMBERS`: the settings given, without the id."""
        return {k: (v.value if isinstance(v, StrEnum) else v) for k, v in asdict(self).items()
                if k != "phone_number_id" and v is not None}


def numbers_to_json(numbers: list[NumberConfig]) -> str:
    """`COEXIST_NUMBERS` as the functions read it."""
    return json.dumps({n.phone_number_id: n.settings() for n in numbers}, sort_keys=True, separators=(",", ":"))


@lru_cache(maxsize=8)
def numbers_from_json(text: str | None) -> dict[str, NumberConfig]:
    """`COEXIST_NUMBERS` ({phone_number_id: settings}) parsed once per value; ValueError when wrong."""
    raw = json.loads(text or "{}")
    if not isinstance(raw, dict):
        raise ValueError("COEXIST_NUMBERS must be an object of phone_number_id -> settings")
    return {str(k): NumberConfig.parse(v or {}, phone_number_id=str(k)) for k, v in raw.items()}


def number_config(phone_number_id: str, text: str | None) -> NumberConfig:
    """A number's settings; a number the configuration does not name gets the defaults."""
    return numbers_from_json(text).get(phone_number_id) or NumberConfig(phone_number_id)
