// The portal token. The sign-in page hands it over in the URL fragment (never sent to a
// server); we keep it in localStorage so every tab of the portal shares one sign-in, and
// signing in or out in one tab reaches the others through the `storage` event.

const STORAGE_KEY = "mailbox-portal.token";

/** Move a token from `#access_token=…` into storage and clean the address bar. */
export function adoptTokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("access_token");
  if (!token) return;
  localStorage.setItem(STORAGE_KEY, token);
  history.replaceState(null, "", location.pathname + location.search);
}

export function storedToken() {
  return localStorage.getItem(STORAGE_KEY);
}

/**
 * The token's claims, for display and for noticing expiry early. The server verifies the
 * signature on every request; nothing here is trusted for access.
 */
export function readClaims(token) {
  try {
    const part = token.split(".")[1];
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof claims.sub !== "string" || !Array.isArray(claims.accounts)) return null;
    return claims;
  } catch {
    return null;
  }
}

export function expiresInMs(claims) {
  return typeof claims.exp === "number" ? claims.exp * 1000 - Date.now() : Infinity;
}

/** Forget the token and go to the sign-in page, saying why (`expired`, `invalid`, …). */
export function leave(portal, reason) {
  localStorage.removeItem(STORAGE_KEY);
  const query = new URLSearchParams();
  if (reason) query.set("reason", reason);
  if (location.pathname !== `${portal}/` && location.pathname !== portal) {
    query.set("next", location.pathname);
  }
  const search = query.toString();
  location.replace(`${portal}/sign-in${search ? `?${search}` : ""}`);
}

/** Call `onChange` when another tab signs in as someone else or signs out. */
export function watchOtherTabs(currentToken, onChange) {
  window.addEventListener("storage", (event) => {
    if (event.key !== STORAGE_KEY && event.key !== null) return;
    if (localStorage.getItem(STORAGE_KEY) !== currentToken) onChange();
  });
}
