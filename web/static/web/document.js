// A document page, live: who else is looking at it and who is typing a comment (the hub's document room), and
// its status and steps brought up to date when a notification about it arrives (an approval reaches the
// requester's open page).
import { hub } from "./hub.js";
import { refreshParts } from "./live.js";

const TYPING_SECONDS = 5;

const article = document.getElementById("document");
const documentId = Number(article.dataset.documentId);
const presence = document.getElementById("presence");
const typing = document.getElementById("typing");

function showPresence(members) {
  const me = hub.user?.id;
  const others = members.filter((member) => member.id !== me).map((member) => member.username);
  presence.textContent = others.length ? `Also viewing: ${others.join(", ")}` : "";
}

const typists = new Map(); // username -> timer
function showTyping() {
  const names = [...typists.keys()];
  if (!names.length) typing.textContent = "";
  else if (names.length === 1) typing.textContent = `${names[0]} is typing…`;
  else typing.textContent = `${names.join(", ")} are typing…`;
}

function someoneTyped(user) {
  if (user.id === hub.user?.id) return;
  clearTimeout(typists.get(user.username));
  typists.set(
    user.username,
    setTimeout(() => {
      typists.delete(user.username);
      showTyping();
    }, TYPING_SECONDS * 1000),
  );
  showTyping();
}

/** The decision form is kept while someone is writing in it; it is replaced when the actions on offer changed. */
function keepActions(current, fresh) {
  if (current.dataset.actions === fresh.dataset.actions) return true;
  const comment = current.querySelector("textarea");
  return Boolean(comment && comment.value.trim() && fresh.dataset.actions);
}

function refresh() {
  refreshParts(["document-live", "document-actions"], {
    keep: (current, fresh) => current.id === "document-actions" && keepActions(current, fresh),
  });
}

hub.addEventListener("presence", (event) => {
  if (Number(event.detail.documentId) === documentId) showPresence(event.detail.members);
});
hub.addEventListener("typing", (event) => {
  if (Number(event.detail.documentId) === documentId) someoneTyped(event.detail.user);
});
hub.addEventListener("notification", (event) => {
  if (Number(event.detail.document_id) === documentId) refresh();
});
// A task of this user's was resolved (decided on another device, reassigned, the document withdrawn). The frame
// does not name its document, and resolutions are rare: look again, so a decision form nobody can use goes away.
hub.addEventListener("resolved", () => refresh());

// Join the room whenever a connection opens (after a reconnect too: rooms do not outlive a socket).
hub.addEventListener("status", (event) => {
  if (event.detail.status !== "open") return;
  hub
    .join(documentId)
    .then((members) => Array.isArray(members) && showPresence(members))
    .catch(() => {});
});
if (hub.status === "open") hub.join(documentId).then(showPresence).catch(() => {});

// Typing in the comment box tells the room (the library sends at most one frame per 2 s).
document.addEventListener("input", (event) => {
  if (event.target.matches("#document-actions textarea")) hub.typing(documentId);
});
addEventListener("pagehide", () => hub.leave(documentId));
