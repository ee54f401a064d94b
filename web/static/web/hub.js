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
  if (!response.ok) throw new Error(`the token request failed (HTTP ${response.status})`);
  const { access, expires_at: expiresAt } = await response.json();
  sessionEnded = false;
  return { access, expiresAt };
}

export const hub = new NotifyHub({ url: "/ws/notifications/", getToken, share: true });

/** The page a notification leads to: its document, else the inbox. */
export function notificationUrl(notification) {
  return notification.document_id ? `/documents/${notification.document_id}/` : "/inbox/";
}
