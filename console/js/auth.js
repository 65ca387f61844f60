// Who is signed in. The token lives in this tab's sessionStorage only (gone when the tab closes).
//
// Local mode ({"auth": "local"} in config.json): a token typed in (local-dev-token, shared, with an
// agent id; or a personal local-agent-<agent id>, which names its agent by itself).
// Deployed ({"auth": "cognito"}): Cognito's tokens (cognito.js), kept in memory only, never stored.

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
  if (session.kind === "cognito") return;
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
