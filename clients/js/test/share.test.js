// Tabs sharing one socket (TabShare), against the real hub. Two NotifyHub instances stand for two tabs: Node's
// BroadcastChannel is the real one; Node has no Web Locks, so `LockManager` below implements their exclusive mode
// (one holder per name, the others queued in order, a queued request abortable). The browser tests prove the rest.
import assert from "node:assert/strict";
import { test } from "node:test";

import { NotifyHub } from "../src/notifyhub.js";
import { mintToken, newDocument, newUser, publish, record, recordingWebSocket, waitFor } from "./support.js";

class LockManager {
  #queues = new Map(); // name -> [holder, ...waiting]

  request(name, options, callback) {
    const queue = this.#queues.get(name) ?? [];
    this.#queues.set(name, queue);
    return new Promise((resolve, reject) => {
      const entry = { callback, resolve, reject };
      options.signal?.addEventListener("abort", () => {
        const index = queue.indexOf(entry);
        if (index > 0) {
          queue.splice(index, 1);
          reject(new DOMException("The request was aborted.", "AbortError"));
        }
      });
      queue.push(entry);
      if (queue.length === 1) this.#grant(name);
    });
  }

  async #grant(name) {
    const queue = this.#queues.get(name);
    const holder = queue[0];
    if (!holder) return;
    try {
      holder.resolve(await holder.callback({ name, mode: "exclusive" }));
    } catch (error) {
      holder.reject(error);
    }
    queue.shift();
    this.#grant(name);
  }
}

const visible = { visible: true, online: true, listen: () => () => {} };
const hidden = { ...visible, visible: false };

function tabs(t, user) {
  const locks = new LockManager();
  const { WebSocket, sockets } = recordingWebSocket();
  const open = (environment = visible) => {
    const hub = new NotifyHub({
      url: process.env.NOTIFYHUB_WS,
      getToken: () => mintToken(user.username),
      share: true,
      locks,
      WebSocket,
      environment,
      reconnect: { initialDelay: 50, maxDelay: 500 },
    });
    const events = record(hub);
    t.after(() => hub.stop());
    hub.start();
    return { hub, events };
  };
  return { open, sockets };
}

test("two tabs, one socket: the follower gets the state at once, the events, and answers through the leader", async (t) => {
  const user = await newUser();
  await publish(user.username);
  const { open, sockets } = tabs(t, user);
  const { hub: leader, events: leaderEvents } = open();
  await waitFor(() => leader.status === "open", "the leader open");

  const { hub: follower, events } = open();
  await waitFor(() => follower.status === "open", "the follower open");
  assert.equal(follower.leading, false);
  assert.equal(follower.unreadCount, 1);
  assert.deepEqual(follower.user, { id: user.id, username: user.username });

  const id = await publish(user.username, "to both tabs");
  await waitFor(() => events.of("notification").length === 1, "the follower's notification");
  await waitFor(() => leaderEvents.of("notification").length === 2, "the leader's (one replayed, one live)");
  assert.equal(events.of("notification")[0].id, id);
  assert.equal(follower.unreadCount, 2);

  assert.equal(await follower.read(id), 1);
  await waitFor(() => leader.unreadCount === 1 && follower.unreadCount === 1, "both counts");
  assert.ok(leaderEvents.of("read").some((read) => read.id === id));
  assert.equal(await follower.readAll(), 0);
  await waitFor(() => leader.unreadCount === 0, "the leader's count");
  assert.equal(sockets.length, 1);
});

test("rooms are counted across tabs, and the socket moves to the other tab when the leader stops", async (t) => {
  const [alice, bob] = [await newUser(), await newUser()];
  const documentId = await newDocument(alice.username, [bob.username]);
  const { open, sockets } = tabs(t, alice);
  const { hub: first } = open();
  // Asked before this tab knows it leads (or anything is open): answered once it does.
  assert.deepEqual(await first.join(documentId), [{ id: alice.id, username: alice.username }]);
  const { hub: second, events } = open();
  await waitFor(() => second.status === "open", "the second tab open");
  const bobHub = new NotifyHub({ url: process.env.NOTIFYHUB_WS, getToken: () => mintToken(bob.username), share: false });
  const bobEvents = record(bobHub);
  t.after(() => bobHub.stop());
  bobHub.start();

  assert.deepEqual(await second.join(documentId), [{ id: alice.id, username: alice.username }]);
  await bobHub.join(documentId);
  first.leave(documentId); // the second tab still follows it: the room stays joined
  second.typing(documentId);
  await waitFor(() => bobEvents.of("typing").length === 1, "alice typing, from the second tab");

  second.leave(documentId);
  await waitFor(() => bobEvents.of("presence").at(-1)?.members.length === 1, "alice gone once both tabs left");

  first.stop();
  await waitFor(() => second.leading && second.status === "open", "the second tab leading");
  assert.equal(sockets.length, 2);
  assert.deepEqual(events.of("status").map((detail) => detail.status), ["connecting", "open", "reconnecting", "open"]);
  const id = await publish(alice.username);
  await waitFor(() => events.of("notification").some((notification) => notification.id === id), "on the new socket");
});

test("a hidden leader connects while another tab is visible", async (t) => {
  const user = await newUser();
  const { open } = tabs(t, user);
  const { hub: leader } = open(hidden);
  await waitFor(() => leader.status === "offline", "offline: no tab is visible");

  const { hub: follower } = open(visible);
  await waitFor(() => leader.status === "open" && follower.status === "open", "open: the follower is visible");
  assert.equal(leader.leading, true);
});
