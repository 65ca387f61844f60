"""Which bot answers a phone number, from that number's bot settings.

    {"provider": "rules"}                                   (the default)
    {"provider": "lex", "bot_id": "…", "bot_alias_id": "…", "locale_id": "en_US", "session_salt": "…"}
    {"provider": "bedrock", "model_id": "…", "max_tokens": 300, "temperature": 0.2, "system_prompt": "…"}

Provider modules and AWS clients are loaded only when a number uses them.
"""

from __future__ import annotations

from typing import Annotated, Any, Callable, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from coexist.bots.config import BotRules, load_rules
from coexist.bots.model import BotProvider

ClientFactory = Callable[[str], Any]  # service name -> boto3 client, e.g. coexist.aws.client


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RulesSettings(_Settings):
    provider: Literal["rules"] = "rules"


class LexSettings(_Settings):
    provider: Literal["lex"]
    bot_id: str = Field(min_length=1)
    bot_alias_id: str = Field(min_length=1)
    locale_id: str = Field(default="en_US", min_length=1)
    session_salt: str = ""


class BedrockSettings(_Settings):
    provider: Literal["bedrock"]
    model_id: str = Field(min_length=1)
    max_tokens: int = Field(default=300, ge=16, le=4096)
    temperature: float = Field(default=0.2, ge=0.0, le=1.0)
    system_prompt: str | None = None


BotSettings = Annotated[Union[RulesSettings, LexSettings, BedrockSettings], Field(discriminator="provider")]
_SETTINGS = TypeAdapter(BotSettings)


def bot_settings(config: dict | None) -> RulesSettings | LexSettings | BedrockSettings:
    """Validated settings; a missing or empty config means the rules bot. Raises ValidationError."""
    return _SETTINGS.validate_python({"provider": "rules", **(config or {})})


def _default_clients(service: str):
    from coexist import aws  # boto3 only when a number actually uses an AWS bot

    return aws.client(service)


def provider_for(config: dict | None, clients: ClientFactory | None = None, rules: BotRules | None = None) -> BotProvider:
    settings = bot_settings(config)
    rules = rules or load_rules()
    clients = clients or _default_clients
    if isinstance(settings, LexSettings):
        from coexist.bots.lex import LexBot

        return LexBot(clients("lexv2-runtime"), settings.bot_id, settings.bot_alias_id, settings.locale_id, rules.fallback, settings.session_salt)
    if isinstance(settings, BedrockSettings):
        from coexist.bots.bedrock import BedrockBot

        return BedrockBot(
            clients("bedrock-runtime"), settings.model_id, rules.fallback,
            max_tokens=settings.max_tokens, temperature=settings.temperature, system_prompt=settings.system_prompt,
        )
    from coexist.bots.rules import RulesBot

    return RulesBot(rules)
