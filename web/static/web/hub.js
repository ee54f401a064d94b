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

/** Whether a refusal is the end of the session: /web/token/ refused this tab, or (the tabs share one socket) the
 * tab that asked for the token. */
export function isSessionEnd(detail) {
  return sessionEnded || Boolean(detail?.reason?.includes(SESSION_ENDED));
}

export function csrfToken() {
  const cookie = document.cookie.split("; ").find((part) => part.startsWith("csrftoken="));
  if (cookie) return decodeURIComponent(cookie.slice("csrftoken=".length));
  return document.querySelector('meta[name="csrf-token"]')?.content ?? "";
}

// A refusal (401/403: no session, or no CSRF token) means the session has ended: the library stops and says so.
// A server restarting or a network blip is transient (fetch() throws a TypeError; a 5xx or 429 is marked), and the
// library tries again with its backoff.
async function getToken() {
  const response = await fetch("/web/token/", {
    method: "POST",
    credentials: "same-origin",
    cache: "no-store",
    headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
  });
  if (response.status === 401 || response.status === 403) {
    sessionEnded = true;
    throw new SessionEndedError();
  }
  if (!response.ok) {
    const error = new Error(`the server could not issue a token (HTTP ${response.status})`);
    error.transient = true;
    throw error;
  }
  const { access, expires_at: expiresAt } = await response.json();
  sessionEnded = false;
  return { access, expiresAt };
}

export const hub = new NotifyHub({ url: "/ws/notifications/", getToken, share: true });

/** The page a notification leads to: its document, else the inbox. */
export function notificationUrl(notification) {
  return notification.document_id ? `/documents/${notification.document_id}/` : "/inbox/";
}
