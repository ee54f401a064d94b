// The inbox, live: new notifications appear at the top (when this page's filters would show them), reads made
// anywhere (another tab, the phone) update the items and counts, a notification whose work is done (approved
// elsewhere, reassigned, withdrawn) shows as "Done" and loses its action buttons, and "Mark as read" goes through
// the hub (the plain form posts instead when the hub is not connected). A live arrival gets the action buttons
// the page renders for its items (plain forms: Approve, Reject with its comment).
import { hub, notificationUrl } from "./hub.js";
import { renderTime } from "./time.js";

const list = document.getElementById("inbox-list");
const template = document.getElementById("inbox-item-template");
const summary = document.getElementById("inbox-summary");
const empty = document.getElementById("inbox-empty");
const readAllForm = document.getElementById("read-all-form");
const actionTemplate = document.getElementById("inbox-action-template");
const commentActionTemplate = document.getElementById("inbox-comment-action-template");
const filters = new URLSearchParams(location.search);
const eventFilter = filters.get("event") || "";

/** "NewTask" → "New task"; other names as they are (as the server's event_label filter). */
function eventLabel(event) {
  if (!/^(?:[A-Z][a-z]+)+$/.test(event)) return event;
  const words = event.match(/[A-Z][a-z]+/g);
  return [words[0], ...words.slice(1).map((word) => word.toLowerCase())].join(" ");
}

function itemFor(id) {
  return [...list.children].find((item) => item.dataset.id === id) ?? null;
}

function showAsRead(item) {
  item.classList.remove("unread", "arrived");
  item.querySelector(".pill-unread")?.remove();
  item.querySelector(".item-action")?.remove();
}

// Resolution labels as the server's Notification.Resolution.
const RESOLUTIONS = {
  done: "Done: the task was decided",
  reassigned: "Reassigned to someone else",
  withdrawn: "The document was withdrawn",
  decided: "The document was decided by someone else",
  retracted: "Retracted by its publisher",
};

function showAsDone(item, resolution) {
  item.querySelector(".item-actions")?.remove(); // nothing left to do, whether it was read or not
  if (item.classList.contains("resolved")) return;
  const wasUnread = item.classList.contains("unread");
  showAsRead(item);
  if (!wasUnread) return; // one already read stays read (the server keeps it so)
  item.classList.add("resolved");
  const pill = document.createElement("span");
  pill.className = "pill pill-done";
  pill.textContent = "Done";
  pill.title = RESOLUTIONS[resolution] ?? "";
  item.querySelector(".item-meta").prepend(pill);
}

/** The notification's action buttons, as the server renders them (templates/web/_inbox_action.html). */
function addActions(item, notification) {
  const group = item.querySelector(".item-actions");
  for (const action of notification.actions ?? []) {
    const template = action.requires_comment ? commentActionTemplate : actionTemplate;
    const element = template.content.firstElementChild.cloneNode(true);
    const form = element.matches("form") ? element : element.querySelector("form");
    form.action = `/inbox/${encodeURIComponent(notification.id)}/actions/${encodeURIComponent(action.id)}/`;
    form.querySelector("button").textContent = action.label;
    if (action.requires_comment) {
      const id = `comment-${notification.id}-${action.id}`;
      element.querySelector("summary").textContent = `${action.label}…`;
      form.querySelector("label").htmlFor = id;
      form.querySelector("textarea").id = id;
    }
    group.append(element);
  }
  group.hidden = group.children.length === 0;
}

function showUnread(count) {
  if (typeof count !== "number") return;
  summary.dataset.unread = String(count);
  summary.textContent = count ? `${count} unread` : "All read";
}

function admits(notification) {
  // Later pages are positions in a list that moved on: only the first page takes arrivals.
  return list.dataset.firstPage === "true" && (!eventFilter || notification.event === eventFilter);
}

function prepend(notification) {
  if (!admits(notification) || itemFor(notification.id)) return;
  const item = template.content.firstElementChild.cloneNode(true);
  item.dataset.id = notification.id;
  item.dataset.event = notification.event;
  item.dataset.documentId = notification.document_id ?? "";
  item.querySelector(".event").textContent = eventLabel(notification.event);
  item.querySelector(".event").title = notification.event;
  item.querySelector(".item-title").textContent = notification.title;
  const body = item.querySelector(".item-body");
  if (notification.body) body.textContent = notification.body;
  else body.remove();
  const time = item.querySelector("time");
  time.setAttribute("datetime", notification.created_at);
  renderTime(time);
  if (notification.document_id) {
    const link = item.querySelector(".item-link");
    link.href = notificationUrl(notification);
    link.hidden = false;
  }
  item.querySelector(".item-action").action = `/inbox/${encodeURIComponent(notification.id)}/read/`;
  addActions(item, notification);
  item.classList.add("arrived");
  list.prepend(item);
  empty.hidden = true;
}

hub.addEventListener("notification", (event) => prepend(event.detail));
hub.addEventListener("read", (event) => {
  const { id, all } = event.detail;
  if (all) list.querySelectorAll(".item.unread").forEach(showAsRead);
  else if (itemFor(id)) showAsRead(itemFor(id));
});
hub.addEventListener("resolved", (event) => {
  const item = itemFor(event.detail.id);
  if (item) showAsDone(item, event.detail.resolution);
});
hub.addEventListener("unread", (event) => showUnread(event.detail.count));

// With the hub connected, read through it (every other tab and device hears of it at once); otherwise the form
// posts as it does without JavaScript.
list.addEventListener("submit", async (event) => {
  const form = event.target.closest(".item-action");
  if (!form || hub.status !== "open") return;
  event.preventDefault();
  const item = form.closest(".item");
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    await hub.read(item.dataset.id);
    showAsRead(item);
  } catch {
    form.submit();
  }
});

readAllForm.addEventListener("submit", async (event) => {
  if (hub.status !== "open") return;
  event.preventDefault();
  const button = readAllForm.querySelector("button");
  button.disabled = true;
  try {
    await hub.readAll();
    list.querySelectorAll(".item.unread").forEach(showAsRead);
    showUnread(0);
  } catch {
    readAllForm.submit();
  } finally {
    button.disabled = false;
  }
});
