/**
 * notifyhub.js: the NotifyHub client for browsers and Node (docs/client.md).
 *
 * One ES module, no dependencies, no build step. It speaks the native protocol
 * of `/ws/notifications/` (docs/protocol.md) and keeps one connection healthy:
 *
 * - `NotifyHub` is the public face: an EventTarget with explicit statuses
 *   ("connecting", "open", "reconnecting", "offline", "refused", "stopped").
 * - `Connection` is the engine behind it: tokens, sockets, reconnects,
 *   heartbeat, acks, de-duplication, unread count, rooms.
 * - `ReconnectPolicy` is the one place backoff is decided.
 * - `TabShare` lets the tabs of one browser share one socket: the leader tab
 *   (elected with the Web Locks API) runs the Connection, the others talk to
 *   it over a BroadcastChannel.
 */

const DEFAULT_URL = "/ws/notifications/";
const PONG_TIMEOUT = 10_000; // ms without a pong after a ping: the socket is dead
const TYPING_INTERVAL = 2_000; // ms between two typing frames for one room
const SEEN_IDS_KEPT = 5_000; // notification ids remembered to drop repeats
const FAILURES_BEFORE_UNREACHABLE = 3; // sockets in a row that never opened: say "cannot reach the server"
const ROTATION_MIN_LEAD = 5_000; // rotate the token at least this long before it expires
const NORMAL_CLOSURE = 1000;
const CLOSE_UNAUTHORIZED = 4401;
const CLIENT_GAVE_UP = 4000; // our own close code for a socket we gave up on (no pong, no hello)
const CLOSE_ABNORMAL = 1006;
const HELLO_TIMEOUT = 20_000; // ms from opening a socket to its hello: longer means the handshake hangs

/** @typedef {"connecting"|"open"|"reconnecting"|"offline"|"refused"|"stopped"} HubStatus */

/** The statuses a NotifyHub goes through (see docs/client.md, "Statuses"). */
export const Status = Object.freeze({
  CONNECTING: "connecting",
  OPEN: "open",
  RECONNECTING: "reconnecting",
  OFFLINE: "offline",
  REFUSED: "refused",
  STOPPED: "stopped",
});

// Reconnect policy ----------------------------------------------------------------------------------------------

/**
 * Exponential backoff with full jitter: the wait before retry number `attempt`
 * (0 for the first after a drop) is random(0, min(maxDelay, initialDelay * factor^attempt)).
 */
export class ReconnectPolicy {
  /**
   * @param {{initialDelay?: number, maxDelay?: number, factor?: number, random?: () => number}} [options]
   *   delays in ms; `random` returns [0, 1) (Math.random; tests inject their own)
   */
  constructor({ initialDelay = 1000, maxDelay = 30_000, factor = 2, random = Math.random } = {}) {
    this.initialDelay = initialDelay;
    this.maxDelay = maxDelay;
    this.factor = factor;
    this.random = random;
  }

  /** @param {number} attempt @returns {number} ms to wait */
  delay(attempt) {
    return this.random() * Math.min(this.maxDelay, this.initialDelay * this.factor ** attempt);
  }
}

// Small helpers -------------------------------------------------------------------------------------------------

/** The last `limit` ids seen, oldest forgotten first. */
class RecentIds {
  constructor(limit = SEEN_IDS_KEPT) {
    this.limit = limit;
    this.ids = new Set();
  }

  /** Remember `id`; true if it was new. */
  add(id) {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.limit) this.ids.delete(this.ids.values().next().value);
    return true;
  }
}

/** The `exp` of a JWT in ms, or null if it cannot be read. */
function jwtClaims(access) {
  try {
    const part = access.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(Math.ceil(part.length / 4) * 4, "=")));
  } catch {
    return {};
  }
}

function expiryOf(expiresAt, access) {
  if (expiresAt instanceof Date) return expiresAt.getTime();
  if (typeof expiresAt === "number") return expiresAt;
  if (typeof expiresAt === "string" && !Number.isNaN(Date.parse(expiresAt))) return Date.parse(expiresAt);
  const { exp } = jwtClaims(access);
  return typeof exp === "number" ? exp * 1000 : null;
}

/** What getToken() gave, as {access, expiresAt (ms or null)}. */
async function fetchToken(getToken) {
  const token = await getToken();
  const access = typeof token === "string" ? token : token?.access;
  if (typeof access !== "string" || !access) throw new Error("getToken() gave no access token");
  const expiresAt = typeof token === "string" ? null : (token.expiresAt ?? token.expires_at);
  return { access, expiresAt: expiryOf(expiresAt, access) };
}

/**
 * A getToken() failure worth retrying with backoff: what fetch() throws when the network is down (TypeError),
 * or an error the caller marked `transient: true`. Anything else (a 401/403: the session ended) refuses.
 */
function isTransient(error) {
  return error instanceof TypeError || error?.transient === true;
}

function describe(error) {
  return error?.message || String(error);
}

/** `url` as an absolute ws(s) URL: a path resolves against the page (http -> ws, https -> wss). */
function socketUrl(url, access) {
  const base = globalThis.location?.href;
  const resolved = new URL(url, base);
  if (resolved.protocol === "http:") resolved.protocol = "ws:";
  if (resolved.protocol === "https:") resolved.protocol = "wss:";
  resolved.searchParams.set("access_token", access);
  return resolved.href;
}

/** Whether the page is visible and the browser online, and a way to hear when either changes. */
function browserEnvironment() {
  const doc = globalThis.document;
  const win = typeof globalThis.addEventListener === "function" ? globalThis : null;
  return {
    get visible() {
      return !doc || doc.visibilityState !== "hidden";
    },
    get online() {
      return globalThis.navigator?.onLine !== false;
    },
    listen(onChange) {
      doc?.addEventListener("visibilitychange", onChange);
      win?.addEventListener("online", onChange);
      win?.addEventListener("offline", onChange);
      return () => {
        doc?.removeEventListener("visibilitychange", onChange);
        win?.removeEventListener("online", onChange);
        win?.removeEventListener("offline", onChange);
      };
    },
  };
}

// One socket ----------------------------------------------------------------------------------------------------

/** One WebSocket and what is in flight on it. Frames and its end go to the Connection that opened it. */
class HubSocket {
  constructor(url, WebSocketImpl, connection) {
    this.connection = connection;
    this.hello = null; // the hello frame, once it came
    this.replayComplete = false;
    this.opened = false;
    this.inflight = []; // read/readAll/performAction requests sent here, answered in order
    this.subscribing = []; // document ids of subscribes sent here, answered in order
    this.resubscribes = 0; // subscribes a rotation candidate waits for before it takes over
    this.ended = false;
    this.ws = new WebSocketImpl(url);
    this.ws.onopen = () => {
      this.opened = true;
    };
    this.ws.onmessage = (event) => this.#received(event.data);
    this.ws.onclose = (event) => this.#end(event.code, event.reason);
    // Browsers follow an error with a close event; Node 20's WebSocket does not when the connection is refused.
    this.ws.onerror = () => this.opened || this.abandon(CLOSE_ABNORMAL, "");
    this.helloDue = setTimeout(() => this.abandon(CLIENT_GAVE_UP, "no hello from the server"), HELLO_TIMEOUT);
  }

  send(frame) {
    if (this.ended || this.ws.readyState !== 1) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Ping every `seconds`; if a pong is 10 s late, give the socket up as dead. */
  startHeartbeat(seconds) {
    clearInterval(this.pinger);
    this.pinger = setInterval(() => {
      this.send({ type: "ping" });
      this.pongDue ??= setTimeout(() => this.abandon(CLIENT_GAVE_UP, "no pong from the server"), PONG_TIMEOUT);
    }, seconds * 1000);
  }

  pong() {
    clearTimeout(this.pongDue);
    this.pongDue = undefined;
  }

  /** Close it without telling the Connection (it chose to). */
  close(code = NORMAL_CLOSURE, reason = "") {
    this.#stopTimers();
    this.ended = true;
    try {
      this.ws.close(code, reason);
    } catch {
      // already closing
    }
  }

  /** Close it and tell the Connection it ended (a dead socket: its close event may take minutes). */
  abandon(code, reason) {
    if (this.ended) return;
    this.close(code, reason);
    this.connection.socketEnded(this, code, reason);
  }

  #received(data) {
    if (this.ended || typeof data !== "string") return;
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (!frame || typeof frame.type !== "string") return;
    if (frame.type === "hello") clearTimeout(this.helloDue);
    this.connection.frameReceived(this, frame);
  }

  #end(code, reason) {
    if (this.ended) return;
    this.#stopTimers();
    this.ended = true;
    this.connection.socketEnded(this, code, reason);
  }

  #stopTimers() {
    clearTimeout(this.helloDue);
    clearInterval(this.pinger);
    clearTimeout(this.pongDue);
  }
}

// The engine ----------------------------------------------------------------------------------------------------

/**
 * Keeps one authenticated socket open while it is wanted, and turns its frames into events.
 * `emit(type, detail)` receives "status", "notification", "read", "resolved", "unread", "presence" and "typing".
 */
class Connection {
  constructor({ url, getToken, policy, WebSocket, mayConnect, emit, seen }) {
    this.url = url;
    this.getToken = getToken;
    this.policy = policy;
    this.WebSocket = WebSocket;
    this.mayConnect = mayConnect; // () => boolean: visible and online (any tab, when shared)
    this.emit = emit;
    this.seen = seen;
    this.status = Status.STOPPED;
    this.statusDetail = { status: Status.STOPPED };
    this.user = null;
    this.unreadCount = null;
    this.socket = null; // the socket in use
    this.candidate = null; // the socket a token rotation is opening
    this.token = null; // {access, expiresAt}: reused by a reconnect while it is fresh
    this.attempt = 0; // reconnects since the last hello
    this.failuresBeforeOpen = 0;
    this.authRetried = false; // a 4401 since the last hello was already answered with a fresh token
    this.unconfirmedAcks = new Set();
    this.rooms = new Map(); // document id -> {holders: Set, members: Array|null, waiters: [], typingAt: 0}
    this.queue = []; // read/readAll/performAction requests not yet sent
    this.generation = 0; // bumped by stop(): async work of an older generation gives up
  }

  get running() {
    return this.status !== Status.STOPPED && this.status !== Status.REFUSED;
  }

  /** Connect (a tab that takes the socket over from another starts as "reconnecting"). */
  start(status = Status.CONNECTING) {
    if (this.running) return;
    this.attempt = 0;
    this.failuresBeforeOpen = 0;
    this.authRetried = false;
    this.#setStatus(status);
    this.#connect();
  }

  stop(status = Status.STOPPED, reason) {
    this.generation += 1;
    clearTimeout(this.retryTimer);
    clearTimeout(this.rotationTimer);
    for (const socket of [this.socket, this.candidate]) socket?.close(NORMAL_CLOSURE, "client stopped");
    const requests = [...this.queue, ...(this.socket?.inflight ?? [])];
    this.socket = this.candidate = null;
    this.queue = [];
    const error = new Error(reason ? `NotifyHub ${status}: ${reason}` : `NotifyHub ${status}`);
    for (const request of requests) request.reject(error);
    if (status === Status.STOPPED) {
      for (const room of this.rooms.values()) room.waiters.forEach((waiter) => waiter.reject(error));
      this.rooms.clear();
    }
    this.#setStatus(status, { reason });
  }

  /** Visibility or connectivity changed: connect at once if now allowed, stop retrying if not. */
  wake() {
    if (!this.running || this.socket) return;
    if (this.mayConnect()) {
      if (this.status === Status.OFFLINE || this.retryTimer !== undefined) {
        clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
        this.#setStatus(Status.RECONNECTING);
        this.#connect();
      }
    } else if (this.retryTimer !== undefined) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      this.#setStatus(Status.OFFLINE);
    }
  }

  // Commands ----------------------------------------------------------------------------------------------------

  read(id) {
    return this.#request({ type: "read", id });
  }

  readAll() {
    return this.#request({ type: "read_all" });
  }

  performAction(id, action, comment) {
    return this.#request({ type: "action", id, action, comment: comment ?? null });
  }

  /** Join a document room for `holder` (a tab); resolves with its members once the server answered. */
  join(documentId, holder) {
    let room = this.rooms.get(documentId);
    if (!room) {
      room = { holders: new Set(), members: null, waiters: [], typingAt: 0 };
      this.rooms.set(documentId, room);
      this.#subscribe(this.socket, documentId);
    }
    room.holders.add(holder);
    if (room.members) return Promise.resolve(room.members);
    return new Promise((resolve, reject) => room.waiters.push({ resolve, reject }));
  }

  leave(documentId, holder) {
    const room = this.rooms.get(documentId);
    if (!room) return;
    room.holders.delete(holder);
    if (room.holders.size) return;
    this.rooms.delete(documentId);
    const left = new Error(`left document ${documentId}`);
    room.waiters.forEach((waiter) => waiter.reject(left));
    if (this.socket?.hello) this.socket.send({ type: "unsubscribe", document_id: documentId });
  }

  /** Every room `holder` is in, left (a tab that closed). */
  release(holder) {
    for (const [documentId, room] of [...this.rooms]) if (room.holders.has(holder)) this.leave(documentId, holder);
  }

  /** Send `typing` unless this room had one in the last 2 s; true if sent. */
  typing(documentId) {
    const room = this.rooms.get(documentId);
    const now = Date.now();
    if (!room?.members || now - room.typingAt < TYPING_INTERVAL) return false;
    room.typingAt = now;
    return Boolean(this.socket?.send({ type: "typing", document_id: documentId }));
  }

  /** Members of the rooms joined, for a tab that just arrived. */
  roomMembers() {
    return Object.fromEntries([...this.rooms].filter(([, room]) => room.members).map(([id, room]) => [id, room.members]));
  }

  #request(frame) {
    if (!this.running) return Promise.reject(new Error(`NotifyHub is ${this.status}`));
    return new Promise((resolve, reject) => {
      this.queue.push({ frame, resolve, reject });
      this.#flush();
    });
  }

  #flush() {
    const socket = this.socket;
    if (!socket?.hello) return;
    while (this.queue.length) {
      const request = this.queue.shift();
      socket.inflight.push(request);
      socket.send(request.frame);
    }
  }

  #subscribe(socket, documentId) {
    if (socket?.hello && socket.send({ type: "subscribe", document_id: documentId })) {
      socket.subscribing.push(documentId);
    }
  }

  // Connecting --------------------------------------------------------------------------------------------------

  async #connect() {
    this.retryTimer = undefined;
    if (!this.mayConnect()) {
      this.#setStatus(Status.OFFLINE);
      return;
    }
    const generation = this.generation;
    let token;
    try {
      token = await this.#freshToken(false);
    } catch (error) {
      if (generation !== this.generation) return;
      if (!isTransient(error)) {
        this.stop(Status.REFUSED, `could not get an access token (${describe(error)})`);
        return;
      }
      this.#retryLater(undefined, `could not get an access token (${describe(error)})`);
      return;
    }
    if (generation !== this.generation) return;
    this.socket = new HubSocket(socketUrl(this.url, token.access), this.WebSocket, this);
  }

  /** A token from getToken(), or the last one while it has more than the rotation lead left. */
  async #freshToken(mustBeNew) {
    const token = this.token;
    if (!mustBeNew && token && (token.expiresAt === null || token.expiresAt - Date.now() > ROTATION_MIN_LEAD)) {
      return token;
    }
    this.token = await fetchToken(this.getToken);
    return this.token;
  }

  #retryLater(code, reason) {
    if (!this.mayConnect()) {
      this.#setStatus(Status.OFFLINE, { code, reason });
      return;
    }
    if (this.failuresBeforeOpen >= FAILURES_BEFORE_UNREACHABLE) reason = "cannot reach the server";
    this.#setStatus(Status.RECONNECTING, { code, reason });
    this.retryTimer = setTimeout(() => this.#connect(), this.policy.delay(this.attempt));
    this.attempt += 1;
  }

  /** Called by a HubSocket when it closed (or was given up as dead). */
  socketEnded(socket, code, reason) {
    if (socket === this.candidate) {
      this.candidate = null;
      if (code === CLOSE_UNAUTHORIZED) this.token = null;
      this.#scheduleRotation(this.socket?.hello, true);
      return;
    }
    if (socket !== this.socket) return;
    this.socket = null;
    this.candidate?.close(NORMAL_CLOSURE, "reconnecting");
    this.candidate = null;
    clearTimeout(this.rotationTimer);
    this.queue.unshift(...socket.inflight); // sent again once a socket is open
    if (!this.running) return;
    if (!socket.opened) this.failuresBeforeOpen += 1;
    if (code === CLOSE_UNAUTHORIZED) {
      this.token = null;
      if (!this.authRetried) {
        this.authRetried = true; // a fresh token, at once; a second 4401 in a row refuses
        this.#setStatus(Status.RECONNECTING, { code, reason });
        this.#connect();
        return;
      }
      this.stop(Status.REFUSED, `the server refused the access token (${reason || "unauthorized"})`);
      return;
    }
    this.#retryLater(code, reason || undefined);
  }

  // Token rotation ----------------------------------------------------------------------------------------------

  /** Rotate at 80% of the token's remaining life, at least 5 s before expiry (half its life if shorter). */
  #scheduleRotation(hello, retry = false) {
    clearTimeout(this.rotationTimer);
    if (!hello || !this.running) return;
    const expires = Date.parse(hello.token_expires_at);
    const remaining = expires - Date.parse(hello.server_time) - (Date.now() - hello.receivedAt);
    if (!(remaining > 1000)) return; // too late: the 4401 path takes over
    const delay = retry ? remaining / 2 : Math.max(Math.min(remaining * 0.8, remaining - ROTATION_MIN_LEAD), remaining / 2);
    this.rotationTimer = setTimeout(() => this.#rotate(), delay);
  }

  /** Make-before-break: open a socket with a fresh token; it takes over once its replay is done. */
  async #rotate() {
    if (!this.socket?.hello || this.candidate) return;
    const generation = this.generation;
    const current = this.socket;
    let token;
    try {
      token = await this.#freshToken(true);
    } catch {
      if (generation === this.generation && current === this.socket) this.#scheduleRotation(current.hello, true);
      return;
    }
    if (generation !== this.generation || current !== this.socket) return;
    this.candidate = new HubSocket(socketUrl(this.url, token.access), this.WebSocket, this);
  }

  #switchToCandidate() {
    const old = this.socket;
    const next = this.candidate;
    this.socket = next;
    this.candidate = null;
    old.close(NORMAL_CLOSURE, "token rotated");
    for (const documentId of old.subscribing) if (!next.subscribing.includes(documentId)) this.#subscribe(next, documentId);
    this.queue.unshift(...old.inflight); // answered on the new socket instead (read is idempotent)
    this.#resendAcks(next);
    this.#flush();
    next.startHeartbeat(next.hello.heartbeat);
    this.#scheduleRotation(next.hello);
  }

  // Frames ------------------------------------------------------------------------------------------------------

  /** Called by a HubSocket for every frame. A rotation candidate's other frames reach us on the old socket too. */
  frameReceived(socket, frame) {
    const fromCandidate = socket === this.candidate;
    switch (frame.type) {
      case "hello":
        frame.receivedAt = Date.now();
        socket.hello = frame;
        if (fromCandidate) this.#candidateHello(socket);
        else this.#hello(socket);
        return;
      case "notification":
        this.#notification(socket, frame);
        return;
      case "replay_complete":
        socket.replayComplete = true;
        break;
      case "acked":
        for (const id of frame.ids ?? []) this.unconfirmedAcks.delete(id);
        return;
      case "pong":
        socket.pong();
        return;
      case "subscribed":
        this.#subscribed(socket, frame);
        break;
      case "error":
        this.#error(socket, frame);
        break;
      default:
        if (!fromCandidate) this.#event(socket, frame);
        return;
    }
    if (fromCandidate && socket.replayComplete && socket.resubscribes <= 0) this.#switchToCandidate();
  }

  #hello(socket) {
    const hello = socket.hello;
    this.user = hello.user;
    this.attempt = 0;
    this.failuresBeforeOpen = 0;
    this.authRetried = false;
    this.#setUnread(hello.unread_count);
    this.#setStatus(Status.OPEN);
    socket.startHeartbeat(hello.heartbeat);
    this.#scheduleRotation(hello);
    this.#resendAcks(socket);
    for (const documentId of this.rooms.keys()) this.#subscribe(socket, documentId);
    this.#flush();
  }

  #candidateHello(socket) {
    this.#setUnread(socket.hello.unread_count);
    for (const documentId of this.rooms.keys()) this.#subscribe(socket, documentId);
    socket.resubscribes = socket.subscribing.length;
  }

  #notification(socket, frame) {
    socket.send({ type: "ack", id: frame.id }); // every copy: the server needs one ack, and acks are idempotent
    this.unconfirmedAcks.add(frame.id);
    if (!this.seen.add(frame.id)) return;
    if (!frame.replayed && this.unreadCount !== null) this.#setUnread(this.unreadCount + 1);
    const { type, ...notification } = frame;
    this.emit("notification", notification);
  }

  #resendAcks(socket) {
    for (const id of this.unconfirmedAcks) socket.send({ type: "ack", id });
  }

  #subscribed(socket, frame) {
    const documentId = frame.document_id;
    const index = socket.subscribing.indexOf(documentId);
    if (index >= 0) socket.subscribing.splice(index, 1);
    socket.resubscribes -= 1;
    const room = this.rooms.get(documentId);
    if (!room) return; // left meanwhile: its unsubscribe follows
    const changed = JSON.stringify(room.members) !== JSON.stringify(frame.members);
    room.members = frame.members;
    room.waiters.splice(0).forEach((waiter) => waiter.resolve(room.members));
    if (changed) this.emit("presence", { documentId, members: room.members });
  }

  #error(socket, frame) {
    if (frame.request === "subscribe") {
      const documentId = socket.subscribing.shift();
      socket.resubscribes -= 1;
      const room = this.rooms.get(documentId);
      if (room && !room.members) {
        this.rooms.delete(documentId); // refused (forbidden, too many rooms): nobody is in it
        room.waiters.forEach((waiter) => waiter.reject(Object.assign(new Error(frame.message), { code: frame.code })));
      }
    } else if (frame.request === "read" || frame.request === "read_all" || frame.request === "action") {
      const index = socket.inflight.findIndex((request) => request.frame.type === frame.request);
      if (index >= 0) {
        const [request] = socket.inflight.splice(index, 1);
        request.reject(Object.assign(new Error(frame.message), { code: frame.code }));
      }
    }
    // Others: ack of an unknown id, typing refused, unauthorized before a 4401 (the close says it).
  }

  /** Frames of the socket in use that change what the app shows. */
  #event(socket, frame) {
    switch (frame.type) {
      case "unread_count":
        if (frame.request) this.#answered(socket, frame);
        this.#setUnread(frame.count);
        return;
      case "action_result":
        this.#actionPerformed(socket, frame);
        return;
      case "read":
        this.emit("read", { id: frame.id });
        return;
      case "resolved":
        // The work it was about is done: the page drops it (or shows it done); it no longer counts as unread.
        this.emit("resolved", { id: frame.id, resolution: frame.resolution, resolvedAt: frame.resolved_at });
        this.#setUnread(frame.unread_count);
        return;
      case "presence":
        this.#presence(frame);
        return;
      case "typing":
        if (this.rooms.get(frame.document_id)?.members) {
          this.emit("typing", { documentId: frame.document_id, user: frame.user });
        }
    }
  }

  #answered(socket, frame) {
    const index = socket.inflight.findIndex((request) => request.frame.type === frame.request);
    if (index < 0) return;
    const [request] = socket.inflight.splice(index, 1);
    this.emit("read", request.frame.type === "read" ? { id: request.frame.id } : { all: true });
    request.resolve(frame.count);
  }

  /** The answer to the oldest `action` in flight (the server answers a connection's commands in order). */
  #actionPerformed(socket, frame) {
    const index = socket.inflight.findIndex((request) => request.frame.type === "action");
    if (index < 0) return;
    const [request] = socket.inflight.splice(index, 1);
    request.resolve({
      id: frame.id,
      action: frame.action,
      outcome: frame.outcome,
      performedAt: frame.performed_at,
      alreadyPerformed: frame.already_performed,
    });
  }

  #presence(frame) {
    const room = this.rooms.get(frame.document_id);
    if (!room?.members) return;
    const others = room.members.filter((member) => member.id !== frame.user.id);
    room.members = frame.state === "join" ? [...others, frame.user] : others;
    this.emit("presence", { documentId: frame.document_id, members: room.members });
  }

  #setUnread(count) {
    if (typeof count !== "number" || count === this.unreadCount) return;
    this.unreadCount = count;
    this.emit("unread", { count });
  }

  #setStatus(status, { code, reason } = {}) {
    const detail = { status };
    if (code !== undefined) detail.code = code;
    if (reason) detail.reason = reason;
    if (JSON.stringify(detail) === JSON.stringify(this.statusDetail)) return;
    this.status = status;
    this.statusDetail = detail;
    this.emit("status", detail);
  }
}

// Cross-tab sharing ---------------------------------------------------------------------------------------------

const TAB_REPORT_INTERVAL = 5_000; // a follower says it is alive (and whether it is visible) this often
const TAB_GONE_AFTER = 15_000; // a follower silent this long has closed: its rooms are released

/**
 * One socket per browser: the tabs of one user elect a leader with the Web Locks API (the lock is held for the
 * tab's life and released by the browser when it closes, so a follower takes over). Everything else goes over
 * one BroadcastChannel:
 *
 *   leader -> all:       {kind: "event", type, detail}    every event of the leader's Connection
 *                        {kind: "leader"}                  a new leader: followers send hello, calls and rooms again
 *   follower -> leader:  {kind: "hello", tab}              send me the state now ({kind: "state", to, state})
 *                        {kind: "call", tab, id, op, args} a command ({kind: "reply", to, id, ok, value|error})
 *                        {kind: "tab", tab, visible}       alive, and visible or not (every 5 s and on change)
 *                        {kind: "bye", tab}                closing
 *
 * `host` is what the tab does with it: {leading(), event(type, detail), state(state), call(op, args, tab),
 * snapshot(), tabGone(tab), visibilityChanged(), rejoin()}.
 */
export class TabShare {
  constructor({ name, host, locks = globalThis.navigator?.locks, BroadcastChannel = globalThis.BroadcastChannel, visible }) {
    this.name = name;
    this.host = host;
    this.locks = locks;
    this.BroadcastChannel = BroadcastChannel;
    this.visible = visible; // () => boolean: this tab's own visibility
    this.tab = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
    this.isLeader = false;
    this.tabs = new Map(); // leader: follower tab -> {visible, seenAt}
    this.calls = new Map(); // follower: call id -> {op, args, resolve, reject}
    this.nextCall = 1;
  }

  /** Whether this environment can share (Web Locks and BroadcastChannel). */
  static available(locks = globalThis.navigator?.locks, BroadcastChannel = globalThis.BroadcastChannel) {
    return typeof locks?.request === "function" && typeof BroadcastChannel === "function";
  }

  start() {
    this.channel = new this.BroadcastChannel(this.name);
    this.channel.onmessage = (event) => this.#received(event.data);
    this.abort = new AbortController();
    this.locks
      .request(this.name, { signal: this.abort.signal }, () => {
        if (!this.channel) return undefined;
        this.isLeader = true;
        this.post({ kind: "leader" });
        this.host.leading();
        for (const [id, call] of this.calls) {
          this.calls.delete(id); // asked before this tab led: nobody else will answer
          Promise.resolve(this.host.call(call.op, call.args, this.tab)).then(call.resolve, call.reject);
        }
        this.sweeper = setInterval(() => this.#sweepTabs(), TAB_REPORT_INTERVAL);
        return new Promise((resolve) => (this.releaseLock = resolve)); // held until stop() or the tab closes
      })
      .catch(() => {}); // aborted by stop()
    this.post({ kind: "hello", tab: this.tab });
    this.report();
    this.reporter = setInterval(() => this.report(), TAB_REPORT_INTERVAL);
  }

  stop() {
    if (!this.channel) return;
    if (!this.isLeader) this.post({ kind: "bye", tab: this.tab });
    clearInterval(this.reporter);
    clearInterval(this.sweeper);
    this.abort.abort();
    this.releaseLock?.();
    this.channel.close();
    this.channel = null;
    this.isLeader = false;
    const stopped = new Error("NotifyHub stopped");
    for (const call of this.calls.values()) call.reject(stopped);
    this.calls.clear();
  }

  post(message) {
    this.channel?.postMessage(message);
  }

  /** Follower: tell the leader this tab is alive and whether it is visible. */
  report() {
    if (!this.isLeader) this.post({ kind: "tab", tab: this.tab, visible: this.visible() });
  }

  /** Leader: is this tab or any follower visible? */
  anyVisible() {
    return this.visible() || [...this.tabs.values()].some((tab) => tab.visible);
  }

  /** Follower: run a command on the leader; resolves with its answer (sent again if the leader changes). */
  call(op, args) {
    return new Promise((resolve, reject) => {
      const id = this.nextCall++;
      this.calls.set(id, { op, args, resolve, reject });
      this.post({ kind: "call", tab: this.tab, id, op, args });
    });
  }

  #received(message) {
    if (this.isLeader) this.#leaderReceived(message);
    else this.#followerReceived(message);
  }

  #leaderReceived(message) {
    switch (message.kind) {
      case "hello":
        this.post({ kind: "state", to: message.tab, state: this.host.snapshot() });
        break;
      case "tab": {
        const wasVisible = this.anyVisible();
        this.tabs.set(message.tab, { visible: message.visible, seenAt: Date.now() });
        if (this.anyVisible() !== wasVisible) this.host.visibilityChanged();
        break;
      }
      case "bye":
        this.#forget(message.tab);
        break;
      case "call":
        this.tabs.set(message.tab, { visible: this.tabs.get(message.tab)?.visible ?? false, seenAt: Date.now() });
        Promise.resolve()
          .then(() => this.host.call(message.op, message.args, message.tab))
          .then(
            (value) => this.post({ kind: "reply", to: message.tab, id: message.id, ok: true, value }),
            (error) => this.post({ kind: "reply", to: message.tab, id: message.id, ok: false, error: describe(error), code: error?.code }),
          );
        break;
      case "leader": // another tab thinks it leads (should not happen with locks): nothing to do
        break;
    }
  }

  #followerReceived(message) {
    switch (message.kind) {
      case "event":
        this.host.event(message.type, message.detail, message.user);
        break;
      case "state":
        if (message.to === this.tab) this.host.state(message.state);
        break;
      case "reply": {
        const call = message.to === this.tab && this.calls.get(message.id);
        if (!call) break;
        this.calls.delete(message.id);
        if (message.ok) call.resolve(message.value);
        else call.reject(Object.assign(new Error(message.error), { code: message.code }));
        break;
      }
      case "leader":
        this.post({ kind: "hello", tab: this.tab });
        this.report();
        this.host.rejoin();
        for (const [id, call] of this.calls) this.post({ kind: "call", tab: this.tab, id, op: call.op, args: call.args });
        break;
    }
  }

  #sweepTabs() {
    const now = Date.now();
    for (const [tab, report] of this.tabs) if (now - report.seenAt > TAB_GONE_AFTER) this.#forget(tab);
  }

  #forget(tab) {
    const wasVisible = this.anyVisible();
    this.tabs.delete(tab);
    this.host.tabGone(tab);
    if (this.anyVisible() !== wasVisible) this.host.visibilityChanged();
  }
}

// The public face -----------------------------------------------------------------------------------------------

/**
 * @typedef {object} NotifyHubOptions
 * @property {string} [url] ws(s):// URL or a path resolved against the page; default "/ws/notifications/"
 * @property {() => Promise<string | {access: string, expiresAt?: string|number|Date}>} getToken
 *   a fresh access token; reject to refuse (a TypeError or an error with `transient: true` retries with backoff)
 * @property {boolean} [share] one socket per browser shared by the tabs (default: where Web Locks and
 *   BroadcastChannel exist)
 * @property {string} [scope] names the tabs that share (default: the user id in the access token)
 * @property {ReconnectPolicy | {initialDelay?: number, maxDelay?: number, factor?: number, random?: () => number}} [reconnect]
 * @property {typeof WebSocket} [WebSocket] WebSocket constructor (default globalThis.WebSocket)
 * @property {{visible: boolean, online: boolean, listen(onChange: () => void): () => void}} [environment]
 *   page visibility and connectivity (default: document and navigator; always visible and online in Node)
 * @property {{request: Function}} [locks] Web Locks (default navigator.locks)
 * @property {typeof BroadcastChannel} [BroadcastChannel] (default globalThis.BroadcastChannel)
 */

/**
 * A live connection to NotifyHub for one user. Events: "notification", "read", "resolved", "unread", "status",
 * "presence", "typing" (CustomEvent; what happened is in `event.detail`). See docs/client.md.
 */
export class NotifyHub extends EventTarget {
  #options;
  #connection = null; // the engine, in a tab that leads (or does not share)
  #share = null;
  #seen = new RecentIds();
  #rooms = new Set(); // rooms this tab joined
  #typingAt = new Map();
  #status = { status: Status.STOPPED };
  #unreadCount = null;
  #user = null;
  #stopEnvironment = null;
  #starting = null; // while start() finds out whose tabs share: a promise

  /** @param {NotifyHubOptions} options */
  constructor(options) {
    super();
    if (typeof options?.getToken !== "function") throw new TypeError("NotifyHub needs a getToken() function");
    const reconnect = options.reconnect;
    this.#options = {
      url: DEFAULT_URL,
      environment: browserEnvironment(),
      ...options,
      WebSocket: options.WebSocket ?? globalThis.WebSocket,
      policy: typeof reconnect?.delay === "function" ? reconnect : new ReconnectPolicy(reconnect),
    };
  }

  /** @returns {HubStatus} */
  get status() {
    return this.#status.status;
  }

  /** The unread count (the server's), or null before the first hello. */
  get unreadCount() {
    return this.#unreadCount;
  }

  /** @returns {{id: number, username: string} | null} */
  get user() {
    return this.#user;
  }

  /** Whether this tab holds the socket (always true without sharing, once started). */
  get leading() {
    return this.#connection !== null;
  }

  /** Connect (idempotent; after "refused" or stop(), tries again). */
  start() {
    if (this.#share && this.#status.status === Status.REFUSED) {
      this.#command("start", []).catch(() => {}); // the leader tries again (its own tab or another)
      return;
    }
    if (this.#starting || this.#connection?.running || this.#share) return;
    const { environment } = this.#options;
    this.#stopEnvironment ??= environment.listen(() => {
      this.#share?.report();
      this.#connection?.wake();
    });
    if (this.#connection) {
      this.#connection.start();
      return;
    }
    if (this.#options.share === false || !TabShare.available(this.#options.locks, this.#options.BroadcastChannel)) {
      this.#lead(() => environment.visible && environment.online);
      return;
    }
    this.#starting = this.#startSharing().finally(() => (this.#starting = null));
  }

  /** Close for good (in this tab; with sharing the other tabs go on): status "stopped". */
  stop() {
    this.#stopEnvironment?.();
    this.#stopEnvironment = null;
    this.#share?.stop();
    this.#share = null;
    const connection = this.#connection;
    this.#connection = null;
    if (connection) {
      connection.emit = () => {};
      connection.stop();
    }
    this.#rooms.clear();
    this.#apply("status", { status: Status.STOPPED });
  }

  /** Mark a notification read; resolves with the unread count once the server answered. */
  read(id) {
    return this.#command("read", [id]);
  }

  /** Mark everything read; resolves with the unread count once the server answered. */
  readAll() {
    return this.#command("readAll", []);
  }

  /**
   * Perform one of a notification's `actions` (e.g. a NewTask's "approve", or "reject" with its comment): once,
   * as this user. Resolves with {id, action, outcome, performedAt, alreadyPerformed}; rejects with the server's
   * error (`error.code`: not_found, invalid, forbidden, invalid_transition, already_performed).
   * @param {string} id
   * @param {string} action
   * @param {string} [comment]
   */
  performAction(id, action, comment) {
    return this.#command("performAction", [id, action, comment ?? null]);
  }

  /**
   * Follow a document: resolves with its members [{id, username}] ("presence" events follow as they change).
   * @param {number} documentId
   */
  async join(documentId) {
    this.#rooms.add(documentId);
    try {
      return await this.#command("join", [documentId]);
    } catch (error) {
      this.#rooms.delete(documentId);
      throw error;
    }
  }

  /** @param {number} documentId */
  leave(documentId) {
    if (!this.#rooms.delete(documentId)) return;
    this.#command("leave", [documentId]).catch(() => {});
  }

  /** Tell the room this user is typing; at most one frame per 2 s per room (extra calls do nothing). */
  typing(documentId) {
    const now = Date.now();
    if (!this.#rooms.has(documentId) || now - (this.#typingAt.get(documentId) ?? 0) < TYPING_INTERVAL) return;
    this.#typingAt.set(documentId, now);
    this.#command("typing", [documentId]).catch(() => {});
  }

  // Internals ---------------------------------------------------------------------------------------------------

  async #command(op, args) {
    if (!this.#connection && !this.#share) await this.#starting;
    if (this.#connection) return this.#perform(op, args, "local");
    if (this.#share) return this.#share.call(op, args);
    throw new Error(`NotifyHub is ${this.status}`);
  }

  /** What a command does on the Connection; `holder` is the tab asking (rooms are counted per tab). */
  #perform(op, args, holder) {
    const connection = this.#connection;
    switch (op) {
      case "read":
        return connection.read(args[0]);
      case "readAll":
        return connection.readAll();
      case "performAction":
        return connection.performAction(args[0], args[1], args[2]);
      case "join":
        return connection.join(args[0], holder);
      case "leave":
        return connection.leave(args[0], holder);
      case "typing":
        return connection.typing(args[0]);
      case "start":
        return connection.start(Status.CONNECTING);
    }
    return Promise.reject(new Error(`unknown command ${op}`));
  }

  /** Become the tab that holds the socket. */
  #lead(mayConnect, token = null) {
    this.#connection = new Connection({
      url: this.#options.url,
      getToken: this.#options.getToken,
      policy: this.#options.policy,
      WebSocket: this.#options.WebSocket,
      mayConnect,
      seen: this.#seen,
      emit: (type, detail) => {
        this.#user = this.#connection?.user ?? this.#user;
        this.#apply(type, detail);
        this.#share?.post({ kind: "event", type, detail, user: this.#user });
      },
    });
    this.#connection.token = token;
    for (const documentId of this.#rooms) this.#connection.join(documentId, "local").catch(() => {});
    const takingOver = ![Status.STOPPED, Status.CONNECTING].includes(this.#status.status);
    this.#connection.start(takingOver ? Status.RECONNECTING : Status.CONNECTING);
  }

  async #startSharing() {
    const { environment, getToken } = this.#options;
    this.#apply("status", { status: Status.CONNECTING });
    let scope = this.#options.scope;
    let token = null;
    if (scope === undefined) {
      try {
        token = await fetchToken(getToken);
        scope = jwtClaims(token.access).user_id; // the tabs of one user share
      } catch (error) {
        if (!isTransient(error)) {
          this.#apply("status", { status: Status.REFUSED, reason: `could not get an access token (${describe(error)})` });
          return;
        }
      }
    }
    if (!this.#stopEnvironment) return; // stopped meanwhile
    if (scope === undefined) {
      this.#lead(() => environment.visible && environment.online, token); // whose tabs? a socket of its own
      return;
    }
    const share = new TabShare({
      name: `notifyhub:${this.#options.url}:${scope}`,
      locks: this.#options.locks,
      BroadcastChannel: this.#options.BroadcastChannel,
      visible: () => environment.visible,
      host: {
        leading: () => this.#lead(() => share.anyVisible() && environment.online, token),
        event: (type, detail, user) => {
          this.#user = user ?? this.#user;
          this.#apply(type, detail);
        },
        state: (state) => this.#adopt(state),
        call: (op, args, tab) => this.#perform(op, args, tab === share.tab ? "local" : tab),
        snapshot: () => this.#snapshot(),
        tabGone: (tab) => this.#connection?.release(tab),
        visibilityChanged: () => this.#connection?.wake(),
        rejoin: () => this.#rooms.forEach((documentId) => share.call("join", [documentId]).catch(() => {})),
      },
    });
    this.#share = share;
    share.start();
  }

  #snapshot() {
    const connection = this.#connection;
    return {
      status: connection.statusDetail,
      unreadCount: connection.unreadCount,
      user: connection.user,
      rooms: connection.roomMembers(),
    };
  }

  /** A follower takes the leader's state as its own (status, count, user, its rooms' members). */
  #adopt(state) {
    if (state.user) this.#user = state.user;
    if (state.unreadCount !== null) this.#apply("unread", { count: state.unreadCount });
    this.#apply("status", state.status);
    for (const [documentId, members] of Object.entries(state.rooms ?? {})) {
      if (this.#rooms.has(Number(documentId))) this.#apply("presence", { documentId: Number(documentId), members });
    }
  }

  /** Update what this tab knows, then tell the page (only about its own rooms). */
  #apply(type, detail) {
    switch (type) {
      case "status":
        if (detail.status === this.#status.status && detail.reason === this.#status.reason) return;
        this.#status = detail;
        break;
      case "unread":
        if (detail.count === this.#unreadCount) return;
        this.#unreadCount = detail.count;
        break;
      case "notification":
        this.#seen.add(detail.id); // a tab that leads later knows what was shown
        break;
      case "presence":
      case "typing":
        if (!this.#rooms.has(detail.documentId)) return;
        break;
    }
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
