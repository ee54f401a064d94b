// Reconnecting: de-duplication across a replay, acks sent again, and a network drop through a TCP proxy.
import assert from "node:assert/strict";
import { test } from "node:test";

import { apiGet, connect, newUser, publish, recordingWebSocket, startProxy, waitFor } from "./support.js";

test("a notification replayed after a reconnect is not shown twice, and is acknowledged then", async (t) => {
  const user = await newUser();
  let dropAcks = true; // the first socket's acks never reach the server: the notification stays unacknowledged
  const { WebSocket, sockets } = recordingWebSocket({ dropSent: (frame) => frame.type === "ack" && dropAcks });
  const { hub, events } = connect(t, user, { WebSocket });
  await waitFor(() => hub.status === "open", "open");
  const id = await publish(user.username);
  await waitFor(() => events.of("notification").length === 1, "the notification");

  dropAcks = false;
  let replayed = false;
  sockets[0].close(); // a forced reconnect
  await waitFor(() => sockets.length === 2 && hub.status === "open", "reconnected");
  sockets[1].addEventListener("message", (event) => {
    const frame = JSON.parse(event.data);
    replayed ||= frame.type === "notification" && frame.id === id && frame.replayed;
  });
  await waitFor(async () => (await apiGet(user.username, `/api/notifications/${id}/`)).status === "acknowledged", "ack");

  assert.equal(events.of("notification").length, 1);
  assert.equal(hub.unreadCount, 1);
});

test("a network drop: reconnecting, then open, and what was published meanwhile arrives exactly once", async (t) => {
  const user = await newUser();
  const proxy = await startProxy();
  t.after(() => proxy.close());
  const { hub, events } = connect(t, user, { url: proxy.url });
  await waitFor(() => hub.status === "open", "open");
  const before = await publish(user.username, "before");
  await waitFor(() => events.of("notification").length === 1, "the first notification");

  await proxy.cut();
  await waitFor(() => hub.status === "reconnecting", "reconnecting");
  const during = [await publish(user.username, "during 1"), await publish(user.username, "during 2")];
  await proxy.restore();
  await waitFor(() => hub.status === "open", "open again");
  await waitFor(() => events.of("notification").length === 3, "what was published meanwhile");
  const after = await publish(user.username, "after");
  await waitFor(() => events.of("notification").length === 4, "a live one after");

  assert.deepEqual(events.of("notification").map((notification) => notification.id), [before, ...during, after]);
  assert.equal(hub.unreadCount, 4);
  const statuses = events.of("status").map((detail) => detail.status);
  assert.deepEqual(statuses.slice(0, 3), ["connecting", "open", "reconnecting"]);
  assert.equal(statuses.at(-1), "open");
  assert.ok(!statuses.includes("refused") && !statuses.includes("offline"));
});

test("after several sockets that never opened, the reason says the server cannot be reached", async (t) => {
  const user = await newUser();
  const proxy = await startProxy();
  t.after(() => proxy.close());
  await proxy.cut(); // nobody listens there
  const { hub, events } = connect(t, user, { url: proxy.url });

  await waitFor(() => events.of("status").some((detail) => detail.reason === "cannot reach the server"), "reason");
  assert.equal(hub.status, "reconnecting");
  await proxy.restore();
  await waitFor(() => hub.status === "open", "open once it listens");
});

/** A page's visibility and connectivity that the test changes (what document and navigator say in a browser). */
function pageEnvironment() {
  const listeners = new Set();
  return {
    visible: true,
    online: true,
    listen(onChange) {
      listeners.add(onChange);
      return () => listeners.delete(onChange);
    },
    change(state) {
      Object.assign(this, state);
      listeners.forEach((onChange) => onChange());
    },
  };
}

test("offline: no retrying until the browser is online again, then at once", async (t) => {
  const user = await newUser();
  const environment = pageEnvironment();
  const { WebSocket, sockets } = recordingWebSocket();
  // Backoff long enough that only "online" can explain a quick reconnect.
  const { hub, events } = connect(t, user, { WebSocket, environment, reconnect: { initialDelay: 60_000 } });
  await waitFor(() => hub.status === "open", "open");

  environment.change({ online: false });
  assert.equal(hub.status, "open"); // an open socket is kept: it may survive a blip
  sockets[0].close();
  await waitFor(() => hub.status === "offline", "offline");
  assert.equal(sockets.length, 1);

  environment.change({ online: true });
  await waitFor(() => hub.status === "open", "open again");
  assert.equal(sockets.length, 2);
  assert.deepEqual(events.of("status").map((detail) => detail.status), ["connecting", "open", "offline", "reconnecting", "open"]);
});

test("hidden: the open socket is kept; a dropped one waits for the page to be visible", async (t) => {
  const user = await newUser();
  const environment = pageEnvironment();
  const { WebSocket, sockets } = recordingWebSocket();
  const { hub } = connect(t, user, { WebSocket, environment, reconnect: { initialDelay: 60_000 } });
  await waitFor(() => hub.status === "open", "open");

  environment.change({ visible: false });
  const arrived = [];
  hub.addEventListener("notification", (event) => arrived.push(event.detail.id));
  const id = await publish(user.username, "while hidden");
  await waitFor(() => arrived.includes(id), "a notification on the kept socket");
  sockets[0].close();
  await waitFor(() => hub.status === "offline", "offline while hidden");

  environment.change({ visible: true });
  await waitFor(() => hub.status === "open", "open once visible");
  assert.equal(sockets.length, 2);
});
