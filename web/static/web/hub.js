// The page's one NotifyHub (the client library, clients/js/): every page script imports it from here.
// Its token comes from POST /web/token/ with the session's cookie and the CSRF token; a refusal there means the
// session has ended, which the header says in words (header.js).
import { NotifyHub } from "notifyhub";

export const SESSION_ENDED = "your session has ended — sign in again";

export class SessionEndedError extends Error {
  constructor() {
    super(SESSION_ENDED);
    this.name = "SessionEndedError";
  }
}

let sessionEnded = false;

/** True once /web/token/ refused us: the session expired or was signed out in another tab. */
export function hasSessionEnded() {
  return sessionEnded;
}

export function csrfToken() {
  const cookie = document.cookie.split("; ").find((part) => part.startsWith("csrftoken="));
  if (cookie) return decodeURIComponent(cookie.slice("csrftoken=".length));
  return document.querySelector('meta[name="csrf-token"]')?.content ?? "";
}

const TOKEN_RETRY_DELAYS = [1000, 2000, 4000, 8000]; // then give up: the library says why

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function requestToken() {
  return fetch("/web/token/", {
    method: "POST",
    credentials: "same-origin",
    cache: "no-store",
    headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
  });
}

// A refusal (401/403: no session, or no CSRF token) ends here; a server restarting or a network blip is tried
// again a few times first, so that it is not mistaken for the end of the session.
async function getToken() {
  for (let attempt = 0; ; attempt += 1) {
    let response = null;
    let failure;
    try {
      response = await requestToken();
    } catch (error) {
      failure = new Error("the server cannot be reached");
      failure.cause = error;
    }
    if (response && (response.status === 401 || response.status === 403)) {
      sessionEnded = true;
      throw new SessionEndedError();
    }
    if (response?.ok) {
      const { access, expires_at: expiresAt } = await response.json();
      sessionEnded = false;
      return { access, expiresAt };
    }
    failure ??= new Error(`the server could not issue a token (HTTP ${response.status})`);
    if (attempt >= TOKEN_RETRY_DELAYS.length) throw failure;
    await sleep(TOKEN_RETRY_DELAYS[attempt]);
  }
}

export const hub = new NotifyHub({ url: "/ws/notifications/", getToken, share: true });

/** The page a notification leads to: its document, else the inbox. */
export function notificationUrl(notification) {
  return notification.document_id ? `/documents/${notification.document_id}/` : "/inbox/";
}
