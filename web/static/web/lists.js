// My tasks and Documents, live: the list is fetched again when a notification that changes it arrives
// (data-refresh-on: an event name, or * for any notification about a document).
import { hub } from "./hub.js";
import { refreshParts } from "./live.js";

const region = document.getElementById("live-list");
const refreshOn = region.dataset.refreshOn;

hub.addEventListener("notification", (event) => {
  const notification = event.detail;
  const relevant = refreshOn === "*" ? Boolean(notification.document_id) : notification.event === refreshOn;
  if (relevant) refreshParts(["live-list"]);
});
