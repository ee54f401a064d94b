// A notification's actions: in the notification event, performed once through performAction.
import assert from "node:assert/strict";
import { test } from "node:test";

import { connect, newUser, publish, waitFor } from "./support.js";

const ACTIONS = [
  { id: "pay", label: "Pay now", requires_comment: false },
  { id: "dispute", label: "Dispute", requires_comment: true },
];

test("actions arrive with the notification and are performed once, with the server's errors", async (t) => {
  const user = await newUser();
  const { hub, events } = connect(t, user);
  await waitFor(() => hub.status === "open", "open");
  const id = await publish(user.username, "Invoice 42 is overdue", { actions: ACTIONS });
  await waitFor(() => events.of("notification").some((notification) => notification.id === id), "the notification");
  const notification = events.of("notification").find((arrived) => arrived.id === id);
  assert.deepEqual(notification.actions, ACTIONS);

  await assert.rejects(hub.performAction(id, "dispute"), { code: "invalid", message: "'dispute' needs a comment saying why." });
  await assert.rejects(hub.performAction(id, "archive"), { code: "invalid" });

  const performed = await hub.performAction(id, "dispute", "Paid last week");
  assert.equal(performed.id, id);
  assert.equal(performed.outcome, "recorded");
  assert.equal(performed.alreadyPerformed, false);
  const again = await hub.performAction(id, "dispute", "Paid last week");
  assert.deepEqual(again, { ...performed, alreadyPerformed: true });
  await assert.rejects(hub.performAction(id, "pay"), { code: "already_performed" });
});
