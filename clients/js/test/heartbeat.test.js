// The heartbeat: a socket whose pong does not come within 10 s is given up and replaced.
import assert from "node:assert/strict";
import { test } from "node:test";

import { connect, newUser, publish, QUICK_HEARTBEAT_HTTP, startProxy, waitFor } from "./support.js";

test("a silently dead connection is noticed by its missing pong, and replaced", async (t) => {
  const user = await newUser();
  const proxy = await startProxy(QUICK_HEARTBEAT_HTTP); // hello.heartbeat is 1 s there
  t.after(() => proxy.close());
  const { hub, events } = connect(t, user, { url: proxy.url });
  await waitFor(() => hub.status === "open", "open");

  proxy.freeze(); // no close, no error: only the missing pong tells
  const id = await publish(user.username, "while the connection was dead");
  await waitFor(() => hub.status === "reconnecting", "reconnecting after 10 s without a pong");
  assert.deepEqual(events.of("status").at(-1), { status: "reconnecting", code: 4000, reason: "no pong from the server" });
  await waitFor(() => hub.status === "open", "open on a new connection");
  await waitFor(() => events.of("notification").some((notification) => notification.id === id), "the replay");
  assert.equal(events.of("notification").length, 1);
});
