"""The deployed console's Cognito sign-in (authorization code + PKCE), in Chromium.

Cognito cannot be reached from here: a stub of its three endpoints (authorize, token, logout, and
revoke) answers inside the browser, on the console's own origin, the way Cognito's hosted sign-in
answers. config.json is the deployed one's shape. The API calls the console then makes carry the
ID token the stub issued; the test checks that and hands them on to local mode as an agent's
local token, so the rest of the console works as deployed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import assert_accessible, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CLIENT_ID = "console-client-id"
NUMBER = "106540352242922"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def id_token(serial: int) -> str:
    """Shaped like Cognito's ID token (the console reads only its claims; the API checks the signature)."""
    header = b64url(json.dumps({"alg": "RS256", "kid": "stub"}).encode())
    claims = b64url(json.dumps({"sub": "sub-ana", "cognito:username": "ana", "token_use": "id", "serial": serial,
                                "exp": int(time.time()) + 3600}).encode())
    return f"{header}.{claims}.c2lnbmF0dXJl"


class StubCognito:
    """Cognito's hosted sign-in, as far as the console sees it."""

    def __init__(self, page, origin: str, first_expires_in: int = 3600, answer_state: str | None = None):
        self.origin, self.domain = origin, f"{origin}/signin-stub"
        self.first_expires_in = first_expires_in
        self.answer_state = answer_state  # send back this state instead of the one received
        self.authorize: dict = {}
        self.grants: list[dict] = []
        self.revoked: list[str] = []
        self.logouts: list[dict] = []
        self.issued: list[str] = []
        self.api_tokens: list[str] = []
        page.route(f"{origin}/config.json", self.config)
        page.route(f"{self.domain}/oauth2/authorize*", self.on_authorize)
        page.route(f"{self.domain}/oauth2/token", self.on_token)
        page.route(f"{self.domain}/oauth2/revoke", self.on_revoke)
        page.route(f"{self.domain}/logout*", self.on_logout)
        page.route(f"{origin}/api/**", self.on_api)

    def config(self, route):
        route.fulfill(json={"auth": "cognito", "region": "eu-west-1", "api": f"{self.origin}/",
                            "cognito": {"domain": self.domain, "client_id": CLIENT_ID}, "numbers": [NUMBER]})

    def on_authorize(self, route):
        query = {k: v[0] for k, v in parse_qs(urlparse(route.request.url).query).items()}
        self.authorize = query
        state = self.answer_state or query["state"]
        route.fulfill(status=302, headers={"Location": f"{query['redirect_uri']}?code=code-1&state={state}"})

    def on_token(self, route):
        form = {k: v[0] for k, v in parse_qs(route.request.post_data or "").items()}
        self.grants.append(form)
        if form.get("client_id") != CLIENT_ID or "client_secret" in form:
            return route.fulfill(status=400, json={"error": "invalid_client"})
        if form["grant_type"] == "authorization_code":
            challenge = b64url(hashlib.sha256(form.get("code_verifier", "").encode()).digest())
            if (form.get("code") != "code-1" or form.get("redirect_uri") != f"{self.origin}/"
                    or challenge != self.authorize.get("code_challenge")):
                return route.fulfill(status=400, json={"error": "invalid_grant"})
            expires_in, refresh = self.first_expires_in, {"refresh_token": "refresh-1"}
        elif form["grant_type"] == "refresh_token" and form.get("refresh_token") == "refresh-1":
            expires_in, refresh = 3600, {}  # Cognito does not rotate the refresh token by default
        else:
            return route.fulfill(status=400, json={"error": "invalid_grant"})
        token = id_token(len(self.issued) + 1)
        self.issued.append(token)
        route.fulfill(json={"id_token": token, "access_token": "access", "expires_in": expires_in, "token_type": "Bearer", **refresh})

    def on_revoke(self, route):
        self.revoked.append(parse_qs(route.request.post_data or "").get("token", [""])[0])
        route.fulfill(status=200, body="")

    def on_logout(self, route):
        query = {k: v[0] for k, v in parse_qs(urlparse(route.request.url).query).items()}
        self.logouts.append(query)
        route.fulfill(status=302, headers={"Location": query["logout_uri"]})

    def on_api(self, route):
        authorization = route.request.headers.get("authorization", "")
        self.api_tokens.append(authorization.removeprefix("Bearer "))
        if authorization.removeprefix("Bearer ") not in self.issued:
            return route.fulfill(status=401, json={"code": "unauthorized", "message": "not a token the stub issued"})
        route.continue_(headers={**route.request.headers, "authorization": "Bearer local-agent-ana"})


def test_pkce_pieces_follow_rfc_7636(page, local):
    page.goto("/")
    result = page.evaluate("""async () => {
        const pkce = await import('/js/pkce.js');
        const verifier = pkce.randomVerifier();
        return {
            vector: await pkce.challengeOf('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'),
            verifier, again: pkce.randomVerifier(), challenge: await pkce.challengeOf(verifier),
        };
    }""")
    assert result["vector"] == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636, appendix B
    assert len(result["verifier"]) == 43 and set(result["verifier"]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert result["verifier"] != result["again"]
    assert result["challenge"] == b64url(hashlib.sha256(result["verifier"].encode()).digest())


def test_sign_in_with_pkce_keeps_tokens_in_memory_refreshes_and_signs_out(page, local):
    origin = local.http.rstrip("/")
    cognito = StubCognito(page, origin, first_expires_in=62)  # refreshed a minute early: within seconds
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
    assert_accessible(page, "sign-in-cognito")
    screenshot(page, "sign-in-cognito")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", name="Chats")).to_be_visible()
    sent = cognito.authorize
    assert sent["response_type"] == "code" and sent["client_id"] == CLIENT_ID
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
    assert sent["redirect_uri"] == f"{origin}/" and "openid" in sent["scope"].split()
    exchange = cognito.grants[0]
    assert exchange["grant_type"] == "authorization_code" and "client_secret" not in exchange
    assert "code=" not in page.url and "state=" not in page.url  # the answer left the address bar
    stored = json.dumps([page.evaluate("Object.assign({}, sessionStorage)"), page.evaluate("Object.assign({}, localStorage)")])
    assert cognito.issued[0] not in stored and "refresh-1" not in stored and exchange["code_verifier"] not in stored
    assert cognito.api_tokens and set(cognito.api_tokens) == {cognito.issued[0]}  # the ID token, nothing else

    deadline = time.time() + 20
    while len(cognito.grants) < 2 and time.time() < deadline:
        page.wait_for_timeout(250)
    assert [g["grant_type"] for g in cognito.grants] == ["authorization_code", "refresh_token"]
    assert cognito.grants[1]["refresh_token"] == "refresh-1"
    calls_before = len(cognito.api_tokens)
    page.get_by_role("link", name="Numbers").click()
    expect(page.get_by_role("heading", name="Numbers")).to_be_visible()
    # The view's heading shows before its read goes out: wait for the read (Playwright hands over
    # intercepted requests only while it is called, so through page.wait_for_timeout).
    deadline = time.time() + 20
    while len(cognito.api_tokens) <= calls_before and time.time() < deadline:
        page.wait_for_timeout(100)
    assert cognito.api_tokens[calls_before:] and set(cognito.api_tokens[calls_before:]) == {cognito.issued[1]}

    page.get_by_role("button", name="Sign out").click()
    # The console may show its sign-in form before the browser has followed it to Cognito's logout.
    deadline = time.time() + 20
    while not cognito.logouts and time.time() < deadline:
        page.wait_for_timeout(100)
    expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
    assert cognito.revoked == ["refresh-1"]
    assert cognito.logouts == [{"client_id": CLIENT_ID, "logout_uri": f"{origin}/"}]


def test_an_answer_with_another_state_is_refused_and_no_code_is_exchanged(page, local):
    cognito = StubCognito(page, local.http.rstrip("/"), answer_state="forged-state")
    page.goto("/")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert").filter(has_text="was not started from this page")).to_be_visible()
    assert cognito.grants == []
    assert cognito.api_tokens == []
    assert page.evaluate("sessionStorage.getItem('coexist.signin')") is None  # the pending sign-in is spent


def test_an_answer_without_a_sign_in_started_in_this_tab_is_refused(page, local):
    cognito = StubCognito(page, local.http.rstrip("/"))
    page.goto("/?code=code-1&state=anything")
    expect(page.get_by_role("alert").filter(has_text="was not started from this page")).to_be_visible()
    assert cognito.grants == []
