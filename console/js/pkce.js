// PKCE (RFC 7636) for the Cognito sign-in: a random code verifier that never leaves this tab until
// the code is exchanged, and its S256 challenge, base64url(sha256(verifier)), sent with the request.

export function base64url(bytes) {
  let text = "";
  for (const byte of new Uint8Array(bytes)) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function random(length) {
  return base64url(crypto.getRandomValues(new Uint8Array(length)));
}

export function randomVerifier() {
  return random(32); // 43 characters, the shortest verifier RFC 7636 allows, from 256 random bits
}

export function randomState() {
  return random(16);
}

export async function challengeOf(verifier) {
  return base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
}
