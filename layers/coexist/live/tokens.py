"""Checking a Cognito ID token where API Gateway cannot: the live channel's $connect, whose token
comes in the query string (a browser cannot set headers on a WebSocket).

Signature (RS256 only) against the user pool's published keys, issuer, audience (the console's app
client), expiry and `token_use` = "id": the same token the REST API's Cognito authorizer accepts.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

JWKS_TIMEOUT_S = 3
REFETCH_AFTER_S = 300  # an unknown key id refetches the keys (rotation), at most this often


class InvalidToken(Exception):
    """The token is not a valid ID token of this pool and client; the reason is for logs, not callers."""


def issuer_of(region: str, user_pool_id: str) -> str:
    return f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"


def fetch_jwks(issuer: str) -> dict:
    """The pool's public keys (JWKS), from Cognito's well-known URL."""
    with urllib.request.urlopen(f"{issuer}/.well-known/jwks.json", timeout=JWKS_TIMEOUT_S) as reply:  # noqa: S310 - https, fixed host
        return json.load(reply)


class IdTokenVerifier:
    def __init__(
        self, *, issuer: str, client_id: str, jwks: Callable[[], dict], now: Callable[[], float] = time.time
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self._jwks = jwks
        self._now = now
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def verify(self, token: str) -> dict:
        """The token's claims when it is valid; InvalidToken otherwise."""
        if not token or token.count(".") != 2:
            raise InvalidToken("not a JWS compact token")
        try:
            decoded = jwt.decode(token, self._key_set(token), algorithms=["RS256"])
            jwt.JWTClaimsRegistry(
                now=int(self._now()),
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id},
                exp={"essential": True},
                token_use={"essential": True, "value": "id"},
                sub={"essential": True},
            ).validate(decoded.claims)
        except JoseError as error:
            raise InvalidToken(type(error).__name__) from None
        except ValueError as error:  # a malformed header or payload
            raise InvalidToken(type(error).__name__) from None
        return decoded.claims

    def _key_set(self, token: str) -> KeySet:
        from joserfc.jws import extract_compact

        try:
            kid = extract_compact(token.encode()).headers().get("kid")
        except (JoseError, ValueError) as error:
            raise InvalidToken(type(error).__name__) from None
        with self._lock:
            if self._keys is None or (not self._has(kid) and self._now() - self._fetched_at >= REFETCH_AFTER_S):
                self._keys = KeySet.import_key_set(self._jwks())
                self._fetched_at = self._now()
            if not self._has(kid):
                raise InvalidToken("unknown key id")
            return self._keys

    def _has(self, kid: str | None) -> bool:
        return self._keys is not None and kid is not None and any(k.kid == kid for k in self._keys.keys)
