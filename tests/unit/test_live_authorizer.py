"""The live channel's $connect authorizer: an Allow policy for a valid ID token of a user in a
Coexist group, a Deny (never an error, never the token in a log) for anything else."""

from __future__ import annotations

import json
import logging

import pytest
from joserfc.jwk import RSAKey

from coexist import resources, wiring
from coexist.live import tokens
from functions.live_authorizer import handler as authorizer
from tests.conftest import Context
from tests.unit.test_live_tokens import CLIENT, ISSUER, NOW, id_token, jwks_of

METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:abc123/dev/$connect"


class Directory:
    """The agent directory's reads: who works on which numbers."""

    def __init__(self, items: dict[str, dict]):
        self.items = items

    def get(self, agent_id: str) -> dict | None:
        return self.items.get(agent_id)


DIRECTORY = Directory({"5b8f-agent": {"agent_id": "5b8f-agent", "numbers": ["222", "111"]}, "sup-1": {"numbers": ["333"]}})


@pytest.fixture
def pool(monkeypatch):
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    monkeypatch.setenv(resources.COGNITO_ISSUER_ENV, ISSUER)
    monkeypatch.setenv(resources.CONSOLE_CLIENT_ID_ENV, CLIENT)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setattr(tokens, "fetch_jwks", lambda issuer: jwks_of(key) if issuer == ISSUER else {})
    wiring.id_token_verifier.cache_clear()
    monkeypatch.setattr(wiring.id_token_verifier(), "_now", lambda: NOW)
    monkeypatch.setattr(wiring, "live_directory", lambda: DIRECTORY)
    yield key
    wiring.id_token_verifier.cache_clear()


def connect(token: str | None) -> dict:
    event = {"type": "REQUEST", "methodArn": METHOD_ARN, "queryStringParameters": {"token": token} if token else None}
    return authorizer.lambda_handler(event, Context())


def effect(answer: dict) -> str:
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement["Resource"] == METHOD_ARN and statement["Action"] == "execute-api:Invoke"
    return statement["Effect"]


def test_an_agent_with_a_valid_id_token_may_connect(pool):
    answer = connect(id_token(pool))
    assert effect(answer) == "Allow"
    assert answer["principalId"] == answer["context"]["sub"] == "5b8f-agent"
    assert answer["context"]["numbers"] == "111,222"  # its directory numbers: the changes it receives


def test_a_supervisor_gets_its_numbers_an_admin_every_number_and_an_unlisted_agent_none(pool):
    supervisor = connect(id_token(pool, sub="s-sub", **{"cognito:username": "sup-1", "cognito:groups": ["supervisor"]}))
    admin = connect(id_token(pool, sub="a-sub", **{"cognito:username": "boss", "cognito:groups": ["admin", "agent"]}))
    stranger = connect(id_token(pool, sub="x-sub", **{"cognito:username": "new-hire"}))
    assert [effect(a) for a in (supervisor, admin, stranger)] == ["Allow"] * 3
    assert supervisor["context"]["numbers"] == "333"
    assert admin["context"]["numbers"] == "*"
    assert stranger["context"]["numbers"] == ""  # in the agent group, on no number yet: told of nothing


@pytest.mark.parametrize("groups", [None, [], ["marketing"]])
def test_a_user_in_no_coexist_group_is_refused(pool, groups):
    assert effect(connect(id_token(pool, **{"cognito:groups": groups}))) == "Deny"


def test_an_expired_or_foreign_or_missing_token_is_refused_and_not_logged(pool, caplog):
    expired = id_token(pool, exp=1_800_000_000)
    with caplog.at_level(logging.INFO, logger="coexist-live-authorizer"):
        for token in (expired, id_token(pool, aud="other-client"), "local-dev-token", None):
            assert effect(connect(token)) == "Deny"
    records = [r for r in caplog.records if r.name == "coexist-live-authorizer"]
    assert [r.getMessage() for r in records] == ["live connection refused"] * 4
    logged = json.dumps([{k: str(v) for k, v in vars(r).items()} for r in records])
    assert expired.split(".")[1] not in logged and "local-dev-token" not in logged
