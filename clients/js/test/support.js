// What the Node tests share: where the real hub is, test data, publishing through the REST API, waiting.
// The pytest wrapper (tests/clients/test_js_client.py) starts the hub and sets these variables.
import net from "node:net";

import { NotifyHub } from "../src/notifyhub.js";

export const HTTP = process.env.NOTIFYHUB_HTTP;
export const WS = process.env.NOTIFYHUB_WS;
// A second hub process whose hello says heartbeat: 1 (only for heartbeat.test.js).
export const QUICK_HEARTBEAT_HTTP = process.env.NOTIFYHUB_QUICK_HEARTBEAT_HTTP;
const TEST_DATA = process.env.NOTIFYHUB_TEST_DATA;
const PUBLISHER = process.env.NOTIFYHUB_PUBLISHER;
if (!HTTP || !WS || !TEST_DATA) throw new Error("run these through pytest tests/clients/test_js_client.py");

const WAIT_TIMEOUT = 15_000;

async function postJson(url, body, token) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
  const text = await response.text();
  if (!response.ok) throw new Error(`POST ${url}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A fresh user of the test database: {id, username}. */
export const newUser = () => postJson(`${TEST_DATA}/users`, {});

/** A signed access token for `username`, living `lifetime` seconds (default 300). */
export const mintToken = async (username, lifetime) =>
  (await postJson(`${TEST_DATA}/tokens`, { username, lifetime })).access;

/** A document `requester` and `viewers` (usernames) may all see: its id. */
export const newDocument = async (requester, viewers) =>
  (await postJson(`${TEST_DATA}/documents`, { requester, viewers })).id;

export const deactivate = (username) => postJson(`${TEST_DATA}/deactivate`, { username });

/** Publish to `username` through the REST API, as the publisher (with `extra` fields); the notification's id. */
export async function publish(username, title = "Invoice overdue", extra = {}) {
  const token = await mintToken(PUBLISHER);
  const body = { event: "InvoiceOverdue", title, body: "Pay by Friday.", recipients: { users: [username] }, ...extra };
  return (await postJson(`${HTTP}/api/notifications/`, body, token)).id;
}

/** Retract a notification published by `publish`, as the publisher: it is resolved on every device. */
export async function retract(notificationId) {
  const token = await mintToken(PUBLISHER);
  return postJson(`${HTTP}/api/notifications/${notificationId}/retract/`, {}, token);
}

/** GET an API path as `username`. */
export async function apiGet(username, path) {
  const token = await mintToken(username);
  const response = await fetch(`${HTTP}${path}`, { headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

/** Resolves once `condition()` is true (checked every 20 ms); rejects after 15 s with `what`. */
export async function waitFor(condition, what = "condition") {
  const deadline = Date.now() + WAIT_TIMEOUT;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Node's WebSocket, counting the sockets it opens (and able to drop frames the client sends). */
export function recordingWebSocket({ dropSent = () => false } = {}) {
  const sockets = [];
  const closeCodes = new Map(); // socket -> the code its close event gave
  class RecordingWebSocket extends globalThis.WebSocket {
    constructor(...args) {
      super(...args);
      sockets.push(this);
      this.addEventListener("close", (event) => closeCodes.set(this, event.code));
    }

    send(data) {
      if (!dropSent(JSON.parse(data))) super.send(data);
    }
  }
  return { WebSocket: RecordingWebSocket, sockets, closeCodes };
}

/** Every event a hub dispatches, in order: {type, detail}. */
export function record(hub) {
  const events = [];
  for (const type of ["status", "notification", "read", "resolved", "unread", "presence", "typing"]) {
    hub.addEventListener(type, (event) => events.push({ type, detail: event.detail }));
  }
  events.of = (type) => events.filter((event) => event.type === type).map((event) => event.detail);
  return events;
}

/** A started NotifyHub for `user` (own socket, quick reconnects); stopped by `t.after`. */
export function connect(t, user, options = {}) {
  const hub = new NotifyHub({
    url: WS,
    getToken: () => mintToken(user.username),
    share: false,
    reconnect: { initialDelay: 50, maxDelay: 500 },
    WebSocket: globalThis.WebSocket,
    ...options,
  });
  const events = record(hub);
  t.after(() => hub.stop());
  hub.start();
  return { hub, events };
}

/**
 * A TCP proxy in front of the hub that a test can cut (drop every connection, refuse new ones) and restore, or
 * freeze (its open connections stop carrying anything, as a network that silently lost them; new ones work).
 */
export async function startProxy(targetUrl = HTTP) {
  const target = new URL(targetUrl);
  const connections = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const [from, to] of [[client, upstream], [upstream, client]]) {
      from.pipe(to);
      from.on("error", () => to.destroy());
      from.on("close", () => to.destroy());
    }
    connections.add(client).add(upstream);
    client.on("close", () => {
      connections.delete(client);
      connections.delete(upstream);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = server.address().port;
  let listening = server;
  return {
    url: `ws://127.0.0.1:${port}/ws/notifications/`,
    async cut() {
      const closed = new Promise((resolve) => listening.close(resolve));
      connections.forEach((socket) => socket.destroy());
      await closed;
    },
    freeze() {
      for (const socket of connections) {
        socket.unpipe();
        socket.pause();
      }
    },
    async restore() {
      listening = net.createServer(server.listeners("connection")[0]);
      await new Promise((resolve) => listening.listen(port, "127.0.0.1", resolve));
    },
    async close() {
      connections.forEach((socket) => socket.destroy());
      await new Promise((resolve) => listening.close(() => resolve()));
    },
  };
}
