"""Choosing the bot per phone number from its settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from coexist.bots.bedrock import BedrockBot
from coexist.bots.config import load_rules
from coexist.bots.factory import provider_for
from coexist.bots.lex import LexBot
from coexist.bots.rules import RulesBot

RULES = load_rules()
ROOT = Path(__file__).resolve().parents[2]


class Clients:
    def __init__(self):
        self.asked: list[str] = []

    def __call__(self, service: str):
        self.asked.append(service)
        return f"client:{service}"


@pytest.mark.parametrize("config", [None, {}, {"provider": "rules"}])
def test_the_rules_bot_is_the_default_and_needs_no_client(config):
    clients = Clients()
    assert isinstance(provider_for(config, clients, RULES), RulesBot)
    assert clients.asked == []


def test_lex_settings_build_a_lex_bot():
    clients = Clients()
    bot = provider_for({"provider": "lex", "bot_id": "ABCDEFGHIJ", "bot_alias_id": "TSTALIASID", "locale_id": "es_US"}, clients, RULES)
    assert isinstance(bot, LexBot)
    assert (bot.client, bot.bot_id, bot.bot_alias_id, bot.locale_id, bot.fallback) == ("client:lexv2-runtime", "ABCDEFGHIJ", "TSTALIASID", "es_US", RULES.fallback)


def test_bedrock_settings_build_a_bedrock_bot():
    clients = Clients()
    bot = provider_for({"provider": "bedrock", "model_id": "amazon.nova-micro-v1:0", "max_tokens": 200}, clients, RULES)
    assert isinstance(bot, BedrockBot)
    assert (bot.client, bot.model_id, bot.max_tokens) == ("client:bedrock-runtime", "amazon.nova-micro-v1:0", 200)


@pytest.mark.parametrize(
    "config, fragment",
    [
        ({"provider": "dialogflow"}, "does not match any of the expected tags"),
        ({"provider": "lex", "bot_id": "ABCDEFGHIJ"}, "bot_alias_id"),
        ({"provider": "bedrock"}, "model_id"),
        ({"provider": "bedrock", "model_id": "m", "max_tokens": 0}, "max_tokens"),
        ({"provider": "rules", "bot_id": "x"}, "Extra inputs"),
    ],
)
def test_invalid_settings_are_refused(config, fragment):
    with pytest.raises(ValidationError) as caught:
        provider_for(config, Clients(), RULES)
    assert fragment in str(caught.value)


def test_the_rules_bot_runs_without_importing_boto3():
    # Cold starts of numbers on the rules bot do not pay for the AWS SDK.
    script = (
        "import sys\n"
        "from coexist.bots import BotTurn\n"
        "from coexist.bots.config import load_rules\n"
        "from coexist.bots.respond import respond\n"
        "from coexist.bots.factory import provider_for\n"
        "rules = load_rules()\n"
        "outcome = respond(provider_for(None, rules=rules), BotTurn('p', 'w', 'hours?', 'text', None, 0, {}), rules)\n"
        "assert outcome.decision.intent == 'opening_hours'\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={"PYTHONPATH": str(ROOT / "layers")}, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
