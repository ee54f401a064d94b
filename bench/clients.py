"""A swarm of WebSocket clients in one process, driven by the bench driver over stdin/stdout.

Run as `python -m bench.clients`. Each stdin line is a JSON command
`{"id": n, "cmd": ..., ...}`; each answer is one stdout line `{"id": n, ...}`.
While a phase is open, `{"progress": received}` lines report how many
benchmark notifications arrived so far (the driver's saturation window).

The clients speak NotifyHub's native protocol and tolerate everything else the
hub sends (hello, replays of earlier phases, read/unread syncs, errors): only
notifications stamped with the current phase count. The bare baseline server
sends the same frames, so one client serves both.

In a phase started with `reconnect: true` (the reconnect storm) a client whose
connection the server closes reconnects on its own, as the project's JS client
does (`ReconnectPolicy` in clients/js/src/notifyhub.js): the wait before retry
number `attempt` (0 for the first after a drop) is random(0, min(30 s, 1 s *
2^attempt)), and a hello resets it. Replay needs nothing from the client: the
hub replays what the user has not acknowledged, and the client acknowledges
what it is sent.
"""

import asyncio
import contextlib
import json
import os
import random
import resource
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.wire import STAMP_KEY

PROGRESS_INTERVAL = 0.05
ACK_MODES = ("none", "now", "hold")
# The JS client's reconnect policy (clients/js/src/notifyhub.js: ReconnectPolicy's defaults, HELLO_TIMEOUT).
RECONNECT_INITIAL_DELAY = 1.0
RECONNECT_MAX_DELAY = 30.0
RECONNECT_FACTOR = 2.0
HELLO_TIMEOUT = 20.0


def reconnect_delay(attempt: int, random: Callable[[], float]) -> float:
    """Seconds to wait before retry number `attempt` (0 for the first after a drop): full jitter, as the JS client."""
    return random() * min(RECONNECT_MAX_DELAY, RECONNECT_INITIAL_DELAY * RECONNECT_FACTOR**attempt)


def raise_fd_limit() -> int:
    """Thousands of sockets need more descriptors than the usual soft limit of 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else 1_048_576
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass
class Reconnect:
    """One client's way back after the server dropped it in a storm phase: when, after how many tries it had its
    hello, and when its replay was complete (`replay_complete`)."""

    key: int
    dropped_at: float
    attempts: int = 0
    hello_at: float | None = None
    back_at: float | None = None


@dataclass(eq=False)
class Client:
    key: int
    websocket: ClientConnection
    hello: asyncio.Future
    url: str
    headers: dict
    reconnect: Reconnect | None = None  # the drop this connection ends (storm phases)
    reader: asyncio.Task | None = None
    closing: bool = False


@dataclass
class Swarm:
    clients: dict[int, Client] = field(default_factory=dict)
    phase: str | None = None
    ack_mode: str = "none"
    receipts: list[tuple[int, int, float, float]] = field(default_factory=list)
    held: list[tuple[Client, str]] = field(default_factory=list)
    stray: int = 0
    acks_sent: int = 0
    lost: int = 0  # connections the server closed (or that broke) while we did not ask
    lost_reasons: list[str] = field(default_factory=list)
    generation: int = 0  # bumped by every phase command, so progress restarts from zero
    reconnect: bool = False  # in this phase, clients the server drops reconnect on their own
    reconnects: dict[int, Reconnect] = field(default_factory=dict)  # this phase's drops, by key
    reconnecting: dict[int, asyncio.Task] = field(default_factory=dict)
    newly_back: list[int] = field(default_factory=list)  # keys back with their replay since the last `back`
    random: Callable[[], float] = random.random

    # --- commands ---------------------------------------------------------------
    async def cmd_connect(self, conns: list, concurrency: int = 50, timeout: float = 60) -> dict:
        """Open connections [[key, url, headers], ...] and wait for each one's hello frame."""
        started = time.time()
        gate = asyncio.Semaphore(concurrency)
        errors: list[str] = []

        async def open_one(key: int, url: str, headers: dict) -> bool:
            async with gate:
                try:
                    await asyncio.wait_for(self._open(key, url, headers), timeout)
                    return True
                except Exception as error:  # any failure is reported, never raised: the driver decides
                    errors.append(f"{type(error).__name__}: {error}"[:200])
                    return False

        results = await asyncio.gather(*(open_one(key, url, headers) for key, url, headers in conns))
        return {
            "connected": sum(results),
            "failed": len(results) - sum(results),
            "errors": errors[:5],
            "seconds": time.time() - started,
        }

    async def cmd_close(self, keys: list[int]) -> dict:
        for key in keys:
            if (retrying := self.reconnecting.pop(key, None)) is not None:
                retrying.cancel()
        clients = [self.clients.pop(key) for key in keys if key in self.clients]
        for client in clients:
            client.closing = True
        await asyncio.gather(*(client.websocket.close() for client in clients), return_exceptions=True)
        return {"closed": len(clients), "open": len(self.clients)}

    async def cmd_phase(self, name: str | None, ack: str = "none", reconnect: bool = False) -> dict:
        """Start counting notifications stamped with `name`; `ack` says what to do with each one; with `reconnect`
        a client the server drops reconnects on its own (see the module docstring)."""
        if ack not in ACK_MODES:
            raise ValueError(f"ack must be one of {ACK_MODES}")
        self.phase, self.ack_mode, self.reconnect = name, ack, reconnect
        self.receipts, self.held, self.stray, self.acks_sent = [], [], 0, 0
        self.reconnects, self.newly_back = {}, []
        self.generation += 1
        return {"open": len(self.clients)}

    async def cmd_back(self) -> dict:
        """Keys back with their replay since the last call, and how many dropped clients are not back yet."""
        back, self.newly_back = self.newly_back, []
        away = sum(1 for reconnect in self.reconnects.values() if reconnect.back_at is None)
        return {"back": back, "away": away}

    async def cmd_collect(self) -> dict:
        """This phase's receipts as [key, seq, sent at, received at], and what else happened."""
        return {
            "receipts": self.receipts,
            "stray": self.stray,
            "held": len(self.held),
            "acks_sent": self.acks_sent,
            "lost": self.lost,
            "lost_reasons": self.lost_reasons[:5],
            "open": len(self.clients),
            "reconnects": [[r.key, r.dropped_at, r.attempts, r.hello_at, r.back_at] for r in self.reconnects.values()],
        }

    async def cmd_ack_held(self) -> dict:
        """Send every held ack as fast as the sockets take them."""
        held, self.held = self.held, []
        first = time.time()
        await asyncio.gather(*(self._ack(client, notification_id) for client, notification_id in held))
        return {"sent": len(held), "first": first, "last": time.time()}

    # --- connections --------------------------------------------------------------
    async def _open(
        self, key: int, url: str, headers: dict, reconnect: Reconnect | None = None, sock: socket.socket | None = None
    ) -> None:
        websocket = await connect(
            url,
            sock=sock,  # None: websockets connects itself
            additional_headers=headers or None,
            # permessage-deflate offered, as browsers do: each server's own setting decides (the hub refuses
            # it unless WS_PER_MESSAGE_DEFLATE=true, daphne always; the bare server refuses it too).
            ping_interval=None,
            max_size=2**20,
            open_timeout=None,  # bounded by the caller's wait_for
            close_timeout=2,
        )
        hello = asyncio.get_running_loop().create_future()
        client = Client(key=key, websocket=websocket, hello=hello, url=url, headers=headers, reconnect=reconnect)
        client.reader = asyncio.create_task(self._read(client))
        try:
            await client.hello
        except BaseException:
            client.closing = True
            await websocket.close()
            raise
        old = self.clients.pop(key, None)
        if old is not None:
            old.closing = True
            await old.websocket.close()
        self.clients[key] = client

    def _start_reconnect(self, client: Client) -> None:
        """The server dropped `client` in a storm phase: it reconnects by itself (dropped again before it was back,
        it goes on with the same record)."""
        reconnect = self.reconnects.get(client.key)
        if reconnect is None or reconnect.back_at is not None:
            reconnect = self.reconnects[client.key] = Reconnect(key=client.key, dropped_at=time.time())
        self.reconnecting[client.key] = asyncio.create_task(
            self._reconnect(client.key, client.url, client.headers, reconnect)
        )

    async def _reconnect(self, key: int, url: str, headers: dict, reconnect: Reconnect) -> None:
        """Connect again with the JS client's backoff until a hello comes (the replay follows on that connection)."""
        try:
            while True:
                await asyncio.sleep(reconnect_delay(reconnect.attempts, self.random))
                reconnect.attempts += 1
                if await self._try_open(key, url, headers, reconnect):
                    reconnect.hello_at = reconnect.hello_at or time.time()
                    return
        finally:
            self.reconnecting.pop(key, None)

    async def _try_open(self, key: int, url: str, headers: dict, reconnect: Reconnect) -> bool:
        try:
            async with asyncio.timeout(HELLO_TIMEOUT):
                sock = await _tcp_connected(url)
                if sock is None:  # refused: the server is down
                    return False
                await self._open(key, url, headers, reconnect, sock)
        except Exception:  # reset, refused by the hub, timed out: the next try waits longer
            return False
        return True

    async def _read(self, client: Client) -> None:
        websocket = client.websocket
        try:
            async for raw in websocket:
                received = time.time()
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "notification":
                    await self._on_notification(client, message, received)
                elif kind == "hello" and not client.hello.done():
                    client.hello.set_result(None)
                elif kind == "replay_complete" and client.reconnect is not None and client.reconnect.back_at is None:
                    client.reconnect.back_at = received
                    self.newly_back.append(client.key)
                # Anything else (read, unread_count, pong, presence, error) needs no answer here.
        except ConnectionClosed:
            pass
        finally:
            reason = f"closed {websocket.close_code} {websocket.close_reason or ''}".strip()
            if not client.hello.done():
                client.hello.set_exception(ConnectionError(f"no hello: {reason}"))
            elif not client.closing:
                if self.clients.get(client.key) is client:
                    del self.clients[client.key]
                if self.reconnect and client.key not in self.reconnecting:
                    self._start_reconnect(client)
                else:
                    self.lost += 1
                    self.lost_reasons.append(reason)

    async def _on_notification(self, client: Client, message: dict, received: float) -> None:
        stamp = (message.get("data") or {}).get(STAMP_KEY)
        if not isinstance(stamp, dict) or stamp.get("phase") != self.phase or self.phase is None:
            self.stray += 1  # a replay or a late frame from an earlier phase
            return
        self.receipts.append((client.key, stamp["seq"], stamp["t"], received))
        if self.ack_mode == "now":
            await self._ack(client, message["id"])
        elif self.ack_mode == "hold":
            self.held.append((client, message["id"]))

    async def _ack(self, client: Client, notification_id: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await client.websocket.send(json.dumps({"type": "ack", "id": notification_id}))
            self.acks_sent += 1


async def _tcp_connected(url: str) -> socket.socket | None:
    """A TCP connection to the URL's host and port, or None if it was refused.

    While the server is down, thousands of clients retry; a refused try through websockets' `connect` cost
    ~4 times the CPU of a bare TCP connect, CPU the restarting server needs. The socket is then handed to
    `connect`: one TCP connection per try, as the JS client makes.
    """
    parsed = urlsplit(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (parsed.hostname, parsed.port or 80))
    except OSError:
        sock.close()
        return None
    except BaseException:  # timed out (a full listen backlog drops the SYN) or cancelled
        sock.close()
        raise
    return sock


def _write(line: dict) -> None:
    sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def _report_progress(swarm: Swarm) -> None:
    last = (0, 0)
    while True:
        await asyncio.sleep(PROGRESS_INTERVAL)
        now = (swarm.generation, len(swarm.receipts))
        if swarm.phase is not None and now != last:
            last = now
            _write({"progress": now[1]})


async def serve(reader: asyncio.StreamReader) -> None:
    """Answer commands until `exit` or the end of stdin; commands run concurrently."""
    swarm = Swarm()
    progress = asyncio.create_task(_report_progress(swarm))
    pending: set[asyncio.Task] = set()

    async def run(command: dict) -> None:
        name = command.pop("cmd")
        request_id = command.pop("id")
        try:
            answer = await getattr(swarm, f"cmd_{name}")(**command)
            _write({"id": request_id, "ok": True, **answer})
        except Exception as error:  # reported to the driver, which stops the run with it
            _write({"id": request_id, "ok": False, "error": f"{type(error).__name__}: {error}"})

    while line := await reader.readline():
        command = json.loads(line)
        if command.get("cmd") == "exit":
            break
        task = asyncio.create_task(run(command))
        pending.add(task)
        task.add_done_callback(pending.discard)
    progress.cancel()
    await swarm.cmd_close([*swarm.clients, *swarm.reconnecting])


async def main() -> None:
    raise_fd_limit()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(sys.stdin.fileno(), "rb"))
    await serve(reader)


def run_event_loop(coroutine) -> None:
    """uvloop where installed (it comes with uvicorn[standard]): cheaper clients leave more CPU to the servers."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coroutine)
    else:
        uvloop.run(coroutine)


if __name__ == "__main__":
    run_event_loop(main())
