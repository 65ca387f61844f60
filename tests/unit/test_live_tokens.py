"""The live channel's ID-token check, against a user pool of our own making: an RSA key generated
here and its JWKS, no network."""

from __future__ import annotations

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from coexist.live.tokens import REFETCH_AFTER_S, IdTokenVerifier, InvalidToken, issuer_of

ISSUER = issuer_of("eu-west-1", "eu-west-1_AbCdEf123")
CLIENT = "console-client-id"
NOW = 1_900_000_000


@pytest.fixture(scope="module")
def pool_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "pool-key-1", "use": "sig", "alg": "RS256"})


def jwks_of(*keys: RSAKey) -> dict:
    return {"keys": [k.as_dict(private=False) for k in keys]}


def id_token(key: RSAKey, alg: str = "RS256", **overrides) -> str:
    claims = {
        "sub": "5b8f-agent", "aud": CLIENT, "iss": ISSUER, "token_use": "id", "exp": NOW + 3600, "iat": NOW - 10,
        "cognito:username": "5b8f-agent", "cognito:groups": ["agent"],
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode({"alg": alg, "kid": key.kid}, claims, key)


class Counting:
    def __init__(self, *keys: RSAKey):
        self.keys, self.calls = list(keys), 0

    def __call__(self) -> dict:
        self.calls += 1
        return jwks_of(*self.keys)


def verifier(jwks, now=lambda: NOW) -> IdTokenVerifier:
    return IdTokenVerifier(issuer=ISSUER, client_id=CLIENT, jwks=jwks, now=now)


def test_a_valid_id_token_gives_its_claims(pool_key):
    claims = verifier(Counting(pool_key)).verify(id_token(pool_key))
    assert claims["sub"] == "5b8f-agent"
    assert claims["cognito:groups"] == ["agent"]


@pytest.mark.parametrize("overrides", [
    {"aud": "another-client"},  # an ID token of another app client of the pool
    {"iss": issuer_of("eu-west-1", "eu-west-1_Other0000")},  # another pool
    {"token_use": "access"},  # an access token: the API's authorizer would refuse it too
    {"exp": NOW - 1},  # expired
    {"exp": None},  # never expires
    {"sub": None},
])
def test_a_token_with_wrong_claims_is_refused(pool_key, overrides):
    with pytest.raises(InvalidToken):
        verifier(Counting(pool_key)).verify(id_token(pool_key, **overrides))


def test_a_token_signed_by_another_key_with_the_pools_key_id_is_refused(pool_key):
    impostor = RSAKey.generate_key(2048, parameters={"kid": pool_key.kid})
    with pytest.raises(InvalidToken):
        verifier(Counting(pool_key)).verify(id_token(impostor))


def test_a_token_that_is_not_rs256_is_refused(pool_key):
    from joserfc.jwk import OctKey

    secret = OctKey.import_key("s" * 32, parameters={"kid": pool_key.kid})
    with pytest.raises(InvalidToken):  # HS256 "signed" with anything: never accepted
        verifier(Counting(pool_key)).verify(id_token(secret, alg="HS256"))


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "local-dev-token", "e30.e30."])
def test_garbage_is_refused_with_a_typed_error(pool_key, garbage):
    with pytest.raises(InvalidToken):
        verifier(Counting(pool_key)).verify(garbage)


def test_the_keys_are_fetched_once_and_refetched_for_a_new_key_id_no_more_often_than_allowed(pool_key):
    rotated = RSAKey.generate_key(2048, parameters={"kid": "pool-key-2"})
    jwks = Counting(pool_key)
    clock = [NOW]
    check = verifier(jwks, now=lambda: clock[0])
    check.verify(id_token(pool_key))
    check.verify(id_token(pool_key))
    assert jwks.calls == 1
    jwks.keys.append(rotated)  # Cognito publishes a new key
    with pytest.raises(InvalidToken):  # too soon after the last fetch: unknown key id
        check.verify(id_token(rotated))
    assert jwks.calls == 1
    clock[0] += REFETCH_AFTER_S
    assert check.verify(id_token(rotated, exp=clock[0] + 60))["sub"] == "5b8f-agent"
    assert jwks.calls == 2
