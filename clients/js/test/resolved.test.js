// A notification resolved on the server (here: retracted by its publisher) leaves every client of the user.
import assert from "node:assert/strict";
import { test } from "node:test";

import { connect, newUser, publish, retract, waitFor } from "./support.js";

test("a retracted notification is resolved on every client and leaves the unread count", async (t) => {
  const user = await newUser();
  await publish(user.username, "Still to do"); // stays unread
  const { hub, events } = connect(t, user);
  const { hub: other, events: otherEvents } = connect(t, user);
  await waitFor(() => hub.status === "open" && other.status === "open", "both open");
  const id = await publish(user.username, "Invoice paid meanwhile");
  await waitFor(() => hub.unreadCount === 2 && other.unreadCount === 2, "both count it");

  await retract(id);

  for (const [client, recorded] of [
    [hub, events],
    [other, otherEvents],
  ]) {
    await waitFor(() => recorded.of("resolved").length === 1, "the resolved event");
    const [resolved] = recorded.of("resolved");
    assert.equal(resolved.id, id);
    assert.equal(resolved.resolution, "retracted");
    assert.ok(!Number.isNaN(Date.parse(resolved.resolvedAt)));
    assert.equal(client.unreadCount, 1);
    assert.deepEqual(recorded.of("unread").at(-1), { count: 1 });
  }
});
