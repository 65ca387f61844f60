"""A deployment's own rate card (`rate_card` in cdk.json): checked at synth, handed to the functions
that price messages and report costs."""

from __future__ import annotations

import json

import pytest
from coexist import resources
from coexist.costs import load_rate_card
from coexist.domain.costs import RateCardError

from stacks.config import CoexistConfig

from .conftest import WRITES, statements_of_role

OWN_CARD = {"version": "bsp-2026-01", "currency": "EUR", "source": "https://provider.example/rates", "retrieved": "2026-01-05",
            "markets": [{"country": "TH", "calling_codes": ["66"], "rates": {"marketing": "0.07", "utility": "0.01"}}],
            "other": {"rates": {"marketing": "0.08", "utility": "0.02"}}}


pytestmark = pytest.mark.infra


class Node:
    def __init__(self, context: dict):
        self.context = context

    def try_get_context(self, key: str):
        return self.context.get(key)


def test_the_card_reaches_the_functions_as_the_runtime_reads_it():
    config = CoexistConfig.from_context(Node({"coexist": {"rate_card": OWN_CARD}}))
    environment = config.rate_card_environment()
    card = load_rate_card(environment[resources.RATE_CARD_ENV])
    assert (card.version, card.currency) == ("bsp-2026-01", "EUR")
    assert CoexistConfig.from_context(Node({"coexist": {}})).rate_card_environment() == {}  # the bundled card


def test_a_card_that_cannot_price_fails_the_synth():
    broken = json.loads(json.dumps(OWN_CARD))
    broken["markets"][0]["rates"]["marketing"] = "cheap"
    with pytest.raises(RateCardError, match="markets\\[0\\].rates.marketing"):
        CoexistConfig.from_context(Node({"coexist": {"rate_card": broken}}))


def test_the_agent_api_reads_the_ledger_and_never_writes_it(synthesised):
    functions = synthesised.ingress.find_resources("AWS::Lambda::Function")
    # cdk.json deploys the bundled card: no override in any function's environment.
    for resource in functions.values():
        assert resources.RATE_CARD_ENV not in resource["Properties"].get("Environment", {}).get("Variables", {})
    role = synthesised.logical_id(synthesised.stacks.ingress.agent_api.role)
    on_costs = [s for s in statements_of_role(synthesised.ingress, role) if ":table/coexist-dev-costs" in json.dumps(s["Resource"])]
    actions = {a for s in on_costs for a in s["Action"]}
    assert {"dynamodb:Query", "dynamodb:GetItem"} <= actions
    assert not actions & WRITES
