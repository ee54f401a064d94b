// Token rotation before expiry: make-before-break, no status change, no duplicate.
import assert from "node:assert/strict";
import { test } from "node:test";

import { apiGet, connect, mintToken, newUser, publish, recordingWebSocket, waitFor } from "./support.js";

const LIFETIME = 8; // seconds: rotation at half of it (80% would leave less than 5 s)

test("a short-lived token is rotated on a second socket before it expires", async (t) => {
  const user = await newUser();
  // Acks of the first socket are dropped: the second socket's replay brings that notification again.
  const { WebSocket, sockets, closeCodes } = recordingWebSocket({
    dropSent: (frame) => frame.type === "ack" && sockets.length === 1,
  });
  const firstTokenExpires = Date.now() + LIFETIME * 1000;
  const { hub, events } = connect(t, user, { WebSocket, getToken: () => mintToken(user.username, LIFETIME) });
  await waitFor(() => hub.status === "open", "open");
  const before = await publish(user.username, "before the rotation");
  await waitFor(() => events.of("notification").length === 1, "the first notification");

  await waitFor(() => closeCodes.has(sockets[0]), "the rotation closing the first socket");
  assert.equal(closeCodes.get(sockets[0]), 1000);
  assert.equal(sockets[1].readyState, WebSocket.OPEN);
  await waitFor(async () => (await apiGet(user.username, `/api/notifications/${before}/`)).status === "acknowledged",
    "the replayed notification acknowledged on the new socket");
  await waitFor(() => Date.now() > firstTokenExpires + 500, "the first token's expiry"); // the point of the test
  const after = await publish(user.username, "after the first token expired");
  await waitFor(() => events.of("notification").length === 2, "the second notification");

  assert.deepEqual(events.of("status"), [{ status: "connecting" }, { status: "open" }]);
  assert.deepEqual(events.of("notification").map((notification) => notification.id), [before, after]);
  assert.equal(hub.unreadCount, 2);
  assert.ok([...closeCodes.values()].every((code) => code === 1000), "no socket was closed by the server");
});
