import { EVI360 } from "./api.js";

// Sign-in with the EVI 360 JWT endpoints. The tokens live in sessionStorage: they survive a
// reload (so the chat can resume its answer) but not the tab.
const KEY = "evi360-tokens";
const REFRESH_MARGIN_S = 30;

export function signedIn() {
  return sessionStorage.getItem(KEY) !== null;
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

export async function signIn(username, password) {
  const response = await fetch(`${EVI360}/api/v1/auth/token/`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error?.message ?? `HTTP ${response.status}`);
  sessionStorage.setItem(KEY, JSON.stringify({ access: body.access, refresh: body.refresh }));
}

function expiresAt(jwt) {
  const payload = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(payload)).exp;
}

// One refresh at a time: refresh tokens rotate, so two parallel refreshes would spend the same one.
let refreshing = null;

async function refresh(tokens) {
  const response = await fetch(`${EVI360}/api/v1/auth/token/refresh/`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh: tokens.refresh }),
  });
  if (!response.ok) {
    signOut();
    throw new Error("Your session has ended: sign in again.");
  }
  const body = await response.json();
  const next = { access: body.access, refresh: body.refresh ?? tokens.refresh };
  sessionStorage.setItem(KEY, JSON.stringify(next));
  return next;
}

/** The Authorization header for the next request, refreshing the access token when it is about to expire. */
export async function authHeaders() {
  let tokens = JSON.parse(sessionStorage.getItem(KEY) ?? "null");
  if (tokens === null) throw new Error("Sign in first.");
  if (expiresAt(tokens.access) - Date.now() / 1000 < REFRESH_MARGIN_S) {
    refreshing ??= refresh(tokens).finally(() => (refreshing = null));
    tokens = await refreshing;
  }
  return { Authorization: `Bearer ${tokens.access}` };
}
