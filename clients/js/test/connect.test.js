// Connecting, notifications, acks and the unread count, against the real hub.
import assert from "node:assert/strict";
import { test } from "node:test";

import { NotifyHub } from "../src/notifyhub.js";
import { apiGet, connect, deactivate, mintToken, newUser, publish, WS, waitFor } from "./support.js";

test("connects: hello gives the user and the unread count", async (t) => {
  const user = await newUser();
  await publish(user.username);
  await publish(user.username);

  const { hub, events } = connect(t, user);
  await waitFor(() => hub.status === "open", "open");

  assert.deepEqual(hub.user, { id: user.id, username: user.username });
  assert.equal(hub.unreadCount, 2);
  assert.deepEqual(events.of("status"), [{ status: "connecting" }, { status: "open" }]);
  // Replayed notifications are shown (unseen by this client), but the count already had them.
  await waitFor(() => events.of("notification").length === 2, "two replayed notifications");
  assert.ok(events.of("notification").every((notification) => notification.replayed));
  assert.equal(hub.unreadCount, 2);
});

test("a published notification arrives once, counts as unread and is acknowledged", async (t) => {
  const user = await newUser();
  const { hub, events } = connect(t, user);
  await waitFor(() => hub.status === "open", "open");
  assert.equal(hub.unreadCount, 0);

  const id = await publish(user.username, "Budget exceeded");

  await waitFor(() => events.of("notification").length === 1, "the notification");
  const [notification] = events.of("notification");
  assert.equal(notification.id, id);
  assert.equal(notification.title, "Budget exceeded");
  assert.equal(notification.replayed, false);
  assert.equal("type" in notification, false);
  assert.equal(hub.unreadCount, 1);
  assert.deepEqual(events.of("unread").at(-1), { count: 1 });
  await waitFor(async () => (await apiGet(user.username, `/api/notifications/${id}/`)).status === "acknowledged", "ack");
  assert.equal(events.of("notification").length, 1);
});

test("read and readAll resolve with the server's count, and the user's other client hears of it", async (t) => {
  const user = await newUser();
  const first = await publish(user.username);
  await publish(user.username);
  await publish(user.username);
  const { hub } = connect(t, user);
  const { hub: other, events: otherEvents } = connect(t, user);
  await waitFor(() => hub.status === "open" && other.status === "open", "both open");
  assert.equal(hub.unreadCount, 3);

  const reads = [];
  hub.addEventListener("read", (event) => reads.push(event.detail));
  assert.equal(await hub.read(first), 2);
  assert.equal(hub.unreadCount, 2);
  assert.deepEqual(reads, [{ id: first }]);
  await waitFor(() => otherEvents.of("read").some((read) => read.id === first), "the other client's read");
  await waitFor(() => other.unreadCount === 2, "the other client's count");

  assert.equal(await hub.readAll(), 0);
  assert.equal(hub.unreadCount, 0);
  assert.deepEqual(reads.at(-1), { all: true });
  await waitFor(() => other.unreadCount === 0, "the other client's count after readAll");
  assert.equal((await apiGet(user.username, `/api/notifications/${first}/`)).status, "read");
});

test("read of a notification that is not the user's rejects with the server's error", async (t) => {
  const [owner, intruder] = [await newUser(), await newUser()];
  const id = await publish(owner.username);
  const { hub } = connect(t, intruder);

  await assert.rejects(hub.read(id), (error) => error.code === "not_found");
  assert.equal(hub.status, "open");
});

test("a refused token is replaced by a fresh one at once", async (t) => {
  const user = await newUser();
  let calls = 0;
  const { hub, events } = connect(t, user, {
    getToken: async () => (++calls === 1 ? "not-a-token" : mintToken(user.username)),
  });

  await waitFor(() => hub.status === "open", "open");
  assert.equal(calls, 2);
  assert.deepEqual(
    events.of("status").map((detail) => detail.status),
    ["connecting", "reconnecting", "open"],
  );
  assert.equal(events.of("status")[1].code, 4401);
});

test("refused when the fresh token is refused too, and start() tries again", async (t) => {
  const user = await newUser();
  let valid = false;
  const { hub, events } = connect(t, user, {
    getToken: async () => (valid ? mintToken(user.username) : "not-a-token"),
  });

  await waitFor(() => hub.status === "refused", "refused");
  assert.match(events.of("status").at(-1).reason, /refused the access token \(invalid token\)/);
  await assert.rejects(hub.read("whatever"), /refused/);

  valid = true;
  hub.start();
  await waitFor(() => hub.status === "open", "open after start()");
});

test("refused when getToken() rejects (the session ended); a network failure retries instead", async (t) => {
  const user = await newUser();
  const { hub, events } = connect(t, user, {
    getToken: async () => {
      throw new Error("403 from /web/token/");
    },
  });
  await waitFor(() => hub.status === "refused", "refused");
  assert.equal(events.of("status").at(-1).reason, "could not get an access token (403 from /web/token/)");

  let failures = 0;
  const { hub: flaky, events: flakyEvents } = connect(t, user, {
    getToken: async () => {
      if (++failures <= 2) throw new TypeError("fetch failed");
      return mintToken(user.username);
    },
  });
  await waitFor(() => flaky.status === "open", "open after two network failures");
  assert.deepEqual(
    flakyEvents.of("status").map((detail) => detail.status),
    ["connecting", "reconnecting", "open"],
  );
});

test("needs getToken", () => {
  assert.throws(() => new NotifyHub({ url: WS }), TypeError);
});

test("a user deactivated while connected ends refused (the fresh token is refused too)", async (t) => {
  const user = await newUser();
  const { hub, events } = connect(t, user);
  await waitFor(() => hub.status === "open", "open");

  await deactivate(user.username);

  await waitFor(() => hub.status === "refused", "refused");
  assert.deepEqual(events.of("status").at(-1), {
    status: "refused",
    reason: "the server refused the access token (user unknown or inactive)",
  });
});
