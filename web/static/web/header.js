// The header of every signed-in page: the bell with the live unread count, the connection's state, and a toast
// for each notification as it arrives. It starts the page's hub once its listeners are in place.
import { hub, isSessionEnd, notificationUrl } from "./hub.js";
import { keepTimesCurrent } from "./time.js";

const TOAST_SECONDS = 8;
const MAX_TOASTS = 3;

const STATUS_TEXT = {
  connecting: "Connecting…",
  open: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  stopped: "Offline",
};

const bell = document.getElementById("bell");
const badge = document.getElementById("bell-badge");
const statusElement = document.getElementById("connection-status");
const toasts = document.getElementById("toasts");

export function showUnreadCount(count) {
  if (typeof count !== "number") return;
  bell.setAttribute("aria-label", count ? `Notifications, ${count} unread` : "Notifications, no unread");
  badge.textContent = count > 99 ? "99+" : String(count);
  badge.hidden = count === 0;
}

function showStatus(detail) {
  const state = detail.status;
  statusElement.dataset.state = state;
  if (state !== "refused") {
    statusElement.textContent = STATUS_TEXT[state] ?? STATUS_TEXT.offline;
    return;
  }
  if (!isSessionEnd(detail)) {
    statusElement.textContent = `Not connected: ${detail.reason || "the server refused the connection"}`;
    return;
  }
  const link = document.createElement("a");
  link.href = `/sign-in/?next=${encodeURIComponent(location.pathname + location.search)}`;
  link.textContent = "sign in again";
  statusElement.replaceChildren("Not connected: your session has ended — ", link);
}

function showToast(notification) {
  const toast = document.createElement("div");
  toast.className = "toast";
  toast.dataset.id = notification.id;
  const title = document.createElement("p");
  title.className = "toast-title";
  title.textContent = notification.title;
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.className = "toast-dismiss";
  dismiss.setAttribute("aria-label", "Dismiss");
  dismiss.textContent = "×";
  const body = document.createElement("p");
  body.className = "toast-body";
  body.textContent = notification.body || "";
  const open = document.createElement("a");
  open.href = notificationUrl(notification);
  open.textContent = "Open";
  toast.append(title, dismiss, body, open);

  // Auto-hide, but not while the pointer or the focus is on it (someone is reading or about to click).
  let timer = null;
  const hide = () => toast.remove();
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(hide, TOAST_SECONDS * 1000);
  };
  const hold = () => clearTimeout(timer);
  toast.addEventListener("mouseenter", hold);
  toast.addEventListener("mouseleave", () => toast.contains(document.activeElement) || arm());
  toast.addEventListener("focusin", hold);
  toast.addEventListener("focusout", (event) => toast.contains(event.relatedTarget) || toast.matches(":hover") || arm());
  dismiss.addEventListener("click", hide);
  arm();

  toasts.append(toast);
  while (toasts.children.length > MAX_TOASTS) toasts.firstElementChild.remove();
}

hub.addEventListener("status", (event) => showStatus(event.detail));
hub.addEventListener("unread", (event) => showUnreadCount(event.detail.count));
hub.addEventListener("notification", (event) => showToast(event.detail));
hub.addEventListener("read", (event) => {
  const { id, all } = event.detail;
  for (const toast of toasts.querySelectorAll(".toast")) {
    if (all || toast.dataset.id === id) toast.remove();
  }
});
// Its work is done (approved on another device, reassigned, withdrawn): the toast asks for nothing any more.
hub.addEventListener("resolved", (event) => {
  for (const toast of toasts.querySelectorAll(".toast")) {
    if (toast.dataset.id === event.detail.id) toast.remove();
  }
});

keepTimesCurrent();
// Page scripts add their listeners when their modules run, before any socket event can arrive.
queueMicrotask(() => hub.start());
