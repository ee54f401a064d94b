// Document rooms: join, presence of a second user, the typing throttle, leave, and re-join after a reconnect.
import assert from "node:assert/strict";
import { test } from "node:test";

import { connect, newDocument, newUser, recordingWebSocket, waitFor } from "./support.js";

test("join resolves with the members; presence follows others coming and going", async (t) => {
  const [alice, bob] = [await newUser(), await newUser()];
  const documentId = await newDocument(alice.username, [bob.username]);
  const { hub: aliceHub, events } = connect(t, alice);

  const members = await aliceHub.join(documentId);
  assert.deepEqual(members, [{ id: alice.id, username: alice.username }]);

  const { hub: bobHub } = connect(t, bob);
  const bobMembers = await bobHub.join(documentId);
  assert.deepEqual(new Set(bobMembers.map((member) => member.username)), new Set([alice.username, bob.username]));
  await waitFor(() => events.of("presence").at(-1)?.members.length === 2, "bob's arrival");
  assert.deepEqual(events.of("presence").at(-1), { documentId, members: [{ id: alice.id, username: alice.username }, { id: bob.id, username: bob.username }] });

  bobHub.leave(documentId);
  await waitFor(() => events.of("presence").at(-1)?.members.length === 1, "bob's departure");
  assert.deepEqual(events.of("presence").at(-1).members, [{ id: alice.id, username: alice.username }]);
});

test("typing reaches the others at most once per 2 s", async (t) => {
  const [alice, bob] = [await newUser(), await newUser()];
  const documentId = await newDocument(alice.username, [bob.username]);
  const typed = [];
  const { hub: aliceHub } = connect(t, alice, {
    WebSocket: recordingWebSocket({ dropSent: (frame) => frame.type === "typing" && typed.push(frame) && false }).WebSocket,
  });
  const { hub: bobHub, events } = connect(t, bob);
  await aliceHub.join(documentId);
  await bobHub.join(documentId);

  for (let i = 0; i < 5; i += 1) aliceHub.typing(documentId);

  await waitFor(() => events.of("typing").length === 1, "bob sees alice typing");
  assert.deepEqual(events.of("typing")[0], { documentId, user: { id: alice.id, username: alice.username } });
  assert.equal(typed.length, 1);
  aliceHub.typing(documentId + 1000); // not joined: nothing is sent
  assert.equal(typed.length, 1);
});

test("a room the user may not see is refused", async (t) => {
  const [alice, mallory] = [await newUser(), await newUser()];
  const documentId = await newDocument(alice.username, []);
  const { hub } = connect(t, mallory);

  await assert.rejects(hub.join(documentId), (error) => error.code === "forbidden");
  assert.equal(hub.status, "open");
});

test("rooms are joined again after a reconnect", async (t) => {
  const [alice, bob] = [await newUser(), await newUser()];
  const documentId = await newDocument(alice.username, [bob.username]);
  const { WebSocket, sockets } = recordingWebSocket();
  const { hub, events } = connect(t, alice, { WebSocket });
  await hub.join(documentId);

  sockets[0].close(); // the connection drops
  await waitFor(() => sockets.length === 2 && hub.status === "open", "reconnected");
  const { hub: bobHub } = connect(t, bob);
  await bobHub.join(documentId);

  await waitFor(() => events.of("presence").at(-1)?.members.length === 2, "bob's arrival, seen on the new socket");
  assert.deepEqual(events.of("status").map((detail) => detail.status), ["connecting", "open", "reconnecting", "open"]);
});
