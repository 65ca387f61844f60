"""`COEXIST_NUMBERS` is parsed in one place (coexist.number_config) for the sender, the bot
factory, the Amazon Connect desk and the CDK configuration."""

from __future__ import annotations

import json

import pytest

from coexist.number_config import HumansProvider, NumberConfig, Transport, number_config, numbers_from_json, numbers_to_json
from coexist.outbound.number_settings import COEXISTENCE_MPS, DEFAULT_MPS, PAIR_BURST, settings_for

SOCIAL = "phone-number-id-01234567890123456789012345678901"


def test_a_number_the_configuration_does_not_name_gets_the_defaults():
    config = number_config("106540352242922", '{"999": {"throughput_mps": 5}}')
    assert config == NumberConfig("106540352242922")
    assert config.humans_provider == HumansProvider.DIRECTORY and not config.hands_to_connect
    assert settings_for(config, {"coexistence_evidence": True}, None).throughput_mps == COEXISTENCE_MPS
    assert settings_for(config, None, "connected").throughput_mps == COEXISTENCE_MPS
    assert settings_for(config, None, None).throughput_mps == DEFAULT_MPS
    assert settings_for(config, None, None).transport == Transport.GRAPH and settings_for(config, None, None).pair_burst == PAIR_BURST


def test_the_configuration_round_trips_through_the_environment_variable():
    numbers = [NumberConfig.parse({"phone_number_id": "1", "throughput_mps": 12, "transport": "social_messaging",
                                   "social_messaging_phone_number_id": SOCIAL, "humans": {"provider": "connect"},
                                   "bot": {"provider": "rules"}}),
               NumberConfig.parse("2")]
    text = numbers_to_json(numbers)
    assert json.loads(text)["2"] == {}
    parsed = numbers_from_json(text)
    assert parsed == {"1": numbers[0], "2": numbers[1]}
    assert parsed["1"].transport is Transport.SOCIAL_MESSAGING and parsed["1"].hands_to_connect
    assert settings_for(parsed["1"], None, None).throughput_mps == 12


@pytest.mark.parametrize("entry, problem", [
    ({"phone_number_id": "1", "speed": 3}, "unknown keys"),
    ({"phone_number_id": "1", "transport": "sms"}, "transport must be one of"),
    ({"phone_number_id": "1", "throughput_mps": 0}, "throughput_mps"),
    ({"phone_number_id": "1", "transport": "social_messaging"}, "social_messaging_phone_number_id"),
    ({"phone_number_id": "1", "bot": "lex"}, "bot of 1 must be an object"),
    ({"phone_number_id": "1", "humans": {"provider": "zendesk"}}, "provider 'directory' or 'connect'"),
    ({"throughput_mps": 5}, "needs a phone_number_id"),
])
def test_a_wrong_entry_says_what_is_wrong(entry, problem):
    with pytest.raises(ValueError, match=problem):
        NumberConfig.parse(entry)


def test_the_environment_variable_must_be_an_object():
    with pytest.raises(ValueError, match="must be an object"):
        numbers_from_json('["1"]')
