// Who is signed in. The token lives in this tab's sessionStorage only (gone when the tab closes).
//
// Local mode ({"auth": "local"}): a token typed in (local-dev-token, shared, with an agent id; or a
// personal local-agent-<agent id>). Deployed ({"auth": "cognito", ...}): Cognito's hosted sign-in
// with the authorization code and PKCE; the ID token is the bearer, refreshed before it expires.

const STORE = "coexist.session";
const PERSONAL = /^local-agent-(.+)$/;

export function loadSession() {
  try {
    const session = JSON.parse(sessionStorage.getItem(STORE) || "null");
    return session && session.token ? session : null;
  } catch {
    return null;
  }
}

export function saveSession(session) {
  sessionStorage.setItem(STORE, JSON.stringify(session));
}

export function clearSession() {
  sessionStorage.removeItem(STORE);
}

export function localSession(token, agentId) {
  token = token.trim();
  const personal = PERSONAL.exec(token);
  if (personal) return { token, agentId: personal[1], sharedToken: false };
  return { token, agentId: agentId.trim() || null, sharedToken: true };
}

// --- Cognito (deployed) -------------------------------------------------------------------------

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function claims(jwt) {
  const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(decodeURIComponent(escape(atob(part))));
}

export async function startCognitoSignIn(auth) {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
  sessionStorage.setItem("coexist.pkce", JSON.stringify({ verifier, state }));
  const params = new URLSearchParams({
    response_type: "code", client_id: auth.client_id, redirect_uri: auth.redirect_uri,
    scope: auth.scope || "openid email profile", code_challenge_method: "S256", code_challenge: challenge, state,
  });
  location.assign(`${auth.domain}/oauth2/authorize?${params}`);
}

async function tokenRequest(auth, body) {
  const reply = await fetch(`${auth.domain}/oauth2/token`, {
    method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(body),
  });
  if (!reply.ok) throw new Error("the sign-in was not accepted");
  return reply.json();
}

function cognitoSession(tokens, refreshToken) {
  const who = claims(tokens.id_token);
  return {
    token: tokens.id_token, refreshToken: tokens.refresh_token || refreshToken, expiresAt: who.exp * 1000,
    agentId: who["cognito:username"] || who.sub, sharedToken: false,
  };
}

export async function finishCognitoSignIn(auth) {
  const params = new URLSearchParams(location.search);
  const pkce = JSON.parse(sessionStorage.getItem("coexist.pkce") || "null");
  if (!params.get("code") || !pkce || params.get("state") !== pkce.state) return null;
  sessionStorage.removeItem("coexist.pkce");
  const tokens = await tokenRequest(auth, {
    grant_type: "authorization_code", client_id: auth.client_id, code: params.get("code"),
    redirect_uri: auth.redirect_uri, code_verifier: pkce.verifier,
  });
  history.replaceState(null, "", location.pathname + location.hash);
  return cognitoSession(tokens);
}

export function keepFresh(auth, session, onChange) {
  // Refresh a minute before the ID token expires, silently, for as long as the tab is open.
  if (!session.refreshToken || !session.expiresAt) return () => {};
  const timer = setTimeout(async () => {
    try {
      const tokens = await tokenRequest(auth, { grant_type: "refresh_token", client_id: auth.client_id, refresh_token: session.refreshToken });
      onChange(cognitoSession(tokens, session.refreshToken));
    } catch {
      onChange(null);
    }
  }, Math.max(5_000, session.expiresAt - Date.now() - 60_000));
  return () => clearTimeout(timer);
}
