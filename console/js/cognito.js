// Signing in to the deployed console through Cognito's hosted sign-in: the authorization-code flow
// with PKCE, and no client secret (a browser cannot keep one).
//
// Before leaving for the sign-in page, the code verifier and a random state go to this tab's
// sessionStorage; when Cognito sends the browser back with ?code=…&state=…, the state must be the
// one this tab stored (else the answer is refused: it was not started here), and the code is
// exchanged with the verifier. The tokens stay in memory only; the ID token is refreshed with the
// refresh token a minute before it expires. config.json names the sign-in domain and app client.

import { challengeOf, randomState, randomVerifier } from "./pkce.js";

const PENDING = "coexist.signin";
const REFRESH_EARLY_MS = 60_000;
const MIN_REFRESH_MS = 5_000;
const SCOPES = "openid email profile";

export class SignInError extends Error {
  constructor(code) {
    super(code);
    this.code = code; // "state" (not started in this tab), "denied" (Cognito said no), "exchange" (token endpoint refused)
  }
}

function redirectUri() {
  return `${location.origin}/`;
}

function endpoint(cognito, path) {
  return `${cognito.domain.replace(/\/$/, "")}${path}`;
}

export async function beginSignIn(cognito) {
  const verifier = randomVerifier();
  const state = randomState();
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state }));
  const query = new URLSearchParams({
    response_type: "code", client_id: cognito.client_id, redirect_uri: redirectUri(), scope: SCOPES, state,
    code_challenge: await challengeOf(verifier), code_challenge_method: "S256",
  });
  location.assign(`${endpoint(cognito, "/oauth2/authorize")}?${query}`);
}

// The session Cognito's answer in this URL gives, or null when the URL carries no answer.
export async function finishSignIn(cognito, url = new URL(location.href)) {
  const code = url.searchParams.get("code");
  const error = url.searchParams.get("error");
  if (!code && !error) return null;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING); // one answer per sign-in
  history.replaceState(null, "", url.pathname + url.hash); // the code never stays in the address bar
  if (error) throw new SignInError("denied");
  if (!pending || !pending.state || pending.state !== url.searchParams.get("state")) throw new SignInError("state");
  const tokens = await tokenRequest(cognito, {
    grant_type: "authorization_code", client_id: cognito.client_id, code, redirect_uri: redirectUri(),
    code_verifier: pending.verifier,
  });
  return sessionFrom(tokens);
}

async function tokenRequest(cognito, fields) {
  let reply;
  try {
    reply = await fetch(endpoint(cognito, "/oauth2/token"), {
      method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields), cache: "no-store", credentials: "omit",
    });
  } catch {
    throw new SignInError("exchange");
  }
  const answer = await reply.json().catch(() => ({}));
  if (!reply.ok || !answer.id_token) throw new SignInError("exchange");
  return answer;
}

function claimsOf(jwt) {
  try {
    const payload = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(payload), (c) => c.charCodeAt(0))));
  } catch {
    return {};
  }
}

function sessionFrom(tokens, refreshToken = tokens.refresh_token) {
  const claims = claimsOf(tokens.id_token);
  return {
    kind: "cognito",
    token: tokens.id_token, // what the API's Cognito authorizer and the live channel accept
    refreshToken,
    expiresAt: Date.now() + Number(tokens.expires_in || 3600) * 1000,
    agentId: claims["cognito:username"] || claims.sub || null, // an agent's id is its Cognito user name
    sharedToken: false,
  };
}

// Refresh the ID token in place shortly before it expires, for as long as the refresh token works;
// `onExpired` when it no longer does (the user must sign in again). Returns a stop function.
export function keepFresh(cognito, session, onExpired) {
  let timer = null;
  let stopped = false;
  function schedule() {
    const wait = Math.max(MIN_REFRESH_MS, session.expiresAt - Date.now() - REFRESH_EARLY_MS);
    timer = setTimeout(async () => {
      try {
        const tokens = await tokenRequest(cognito, {
          grant_type: "refresh_token", client_id: cognito.client_id, refresh_token: session.refreshToken,
        });
        if (stopped) return;
        Object.assign(session, sessionFrom(tokens, tokens.refresh_token || session.refreshToken));
        schedule();
      } catch {
        if (!stopped) onExpired();
      }
    }, wait);
  }
  schedule();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

// Revoke the refresh token (best effort) and end the hosted sign-in's own session too.
export async function signOutOf(cognito, session) {
  if (session?.refreshToken) {
    await fetch(endpoint(cognito, "/oauth2/revoke"), {
      method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: session.refreshToken, client_id: cognito.client_id }), credentials: "omit",
    }).catch(() => {});
  }
  const query = new URLSearchParams({ client_id: cognito.client_id, logout_uri: redirectUri() });
  location.assign(`${endpoint(cognito, "/logout")}?${query}`);
}
