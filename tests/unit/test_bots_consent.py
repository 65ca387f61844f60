"""Opt-out and opt-in keywords: whole message only, in several languages, with the confirmation."""

from __future__ import annotations

import pytest

from coexist.bots import REPLY, BotTurn
from coexist.bots.config import load_rules
from coexist.bots.consent import consent_change, consent_keyword
from coexist.bots.respond import respond

RULES = load_rules()


@pytest.mark.parametrize(
    "text",
    ["STOP", "stop", "  Stop!  ", "STOP.", "Unsubscribe", "opt-out", "Stop promotions",
     "BAJA", "¡Baja!", "alto", "PARAR", "sair", "ARRÊT", "arret", "Arrêt !", "ABMELDEN", "Stopp",
     "หยุด", " หยุด! ", "หยุดค่ะ", "ยกเลิกรับข่าวสาร", "เลิกรับ"],
)
def test_a_whole_message_keyword_opts_out(text):
    assert consent_change(text, RULES) == "opt_out"


@pytest.mark.parametrize("text", ["START", "start!", "Unstop", "ALTA", "inscrever", "Anmelden", "démarrer", "de\u0301marrer", "สมัคร", "สมัครรับข่าวสาร"])
def test_a_whole_message_keyword_opts_in(text):
    assert consent_change(text, RULES) == "opt_in"


@pytest.mark.parametrize(
    "text",
    # A keyword inside a sentence is not a keyword: false opt-outs cut patients off from reminders.
    ["please STOP sending me ads", "stop, I meant Tuesday", "don't stop", "cancel", "STOPPED", "start date?", "", None,
     # Thai: bare "cancel" is about appointments; "หยด" (a drop) differs from "หยุด" (stop) only by a vowel mark.
     "ยกเลิก", "หยด", "หยุดนัดพรุ่งนี้"],
)
def test_anything_else_changes_nothing(text):
    assert consent_change(text, RULES) is None


def test_the_confirmation_is_in_the_keywords_language_with_english_as_fallback():
    assert consent_keyword("BAJA", RULES).confirmation == RULES.consent.opt_out_confirmation["es"]
    assert consent_keyword("Arret", RULES).language == "fr"
    assert consent_keyword("START", RULES).confirmation == RULES.consent.opt_in_confirmation["en"]
    assert consent_keyword("หยุด", RULES).confirmation == RULES.consent.opt_out_confirmation["th"]
    assert consent_keyword("สมัคร", RULES).confirmation == RULES.consent.opt_in_confirmation["th"]
    assert consent_keyword("หยุด", RULES).language == "th"


def test_the_shipped_keywords_change_a_purpose_of_the_ledger():
    from coexist.domain.consent import PURPOSES

    assert RULES.consent.purpose in PURPOSES


def test_consent_is_checked_before_the_bot_and_does_not_close_the_chat():
    class Unreachable:
        def turn(self, turn):
            raise AssertionError("the bot must not see a consent keyword")

    outcome = respond(Unreachable(), BotTurn("pnid", "waid", "STOP", "text", None, 1, {"greeted": True}), RULES)
    assert (outcome.consent.change, outcome.consent.purpose, outcome.consent.language) == ("opt_out", "marketing", "en")
    assert outcome.decision.action == REPLY and outcome.decision.escalation_reason is None
    assert [r.text for r in outcome.decision.replies] == [RULES.consent.opt_out_confirmation["en"]]
    assert outcome.decision.session == {"greeted": True}
