// The reconnect policy: full jitter within bounds, a cap, and a reset after a hello (no server needed).
import assert from "node:assert/strict";
import { test } from "node:test";

import { ReconnectPolicy } from "../src/notifyhub.js";

test("full jitter: random(0, min(max, initial * factor^attempt))", () => {
  const highest = new ReconnectPolicy({ initialDelay: 1000, maxDelay: 30_000, factor: 2, random: () => 0.999999 });
  const lowest = new ReconnectPolicy({ random: () => 0 });
  const middle = new ReconnectPolicy({ random: () => 0.5 });

  const ceilings = [0, 1, 2, 3, 4, 5, 6, 10].map((attempt) => Math.round(highest.delay(attempt)));
  assert.deepEqual(ceilings, [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  assert.deepEqual([0, 3, 10].map((attempt) => lowest.delay(attempt)), [0, 0, 0]);
  assert.deepEqual([0, 1, 5].map((attempt) => middle.delay(attempt)), [500, 1000, 15_000]);
});

test("the contract's defaults", () => {
  const policy = new ReconnectPolicy();
  assert.deepEqual([policy.initialDelay, policy.maxDelay, policy.factor], [1000, 30_000, 2]);
});
