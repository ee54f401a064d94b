"""Soak clients in one process, commanded by the soak driver over stdin/stdout (`python -m bench.soak.client`).

Each client is one user's app. It keeps one WebSocket open, in the native
protocol (`/ws/notifications/`, docs/protocol.md) or SignalR's JSON hub
protocol (`/hubs/workflow`, docs/signalr.md: handshake, invocations, a
completion for every call with an invocation id, pings), and behaves by kind:

- `native`, `signalr`: acknowledge every notification on receipt; never leave;
- `silent`: never acknowledge (the hub retries, then pushes to its device);
- `flaky`: acknowledge, and close and reconnect at random (`flaky_up` seconds
  connected, `flaky_down` away), until the driver says `settle`.

After any close it did not ask for, a client reconnects on its own, as
docs/protocol.md tells clients to: exponential backoff from about 1 s, doubling,
capped (`backoff_cap`), each wait ±50 % random, reset once connected.

It records what the soak judges the hub by, and judges nothing itself (the
driver does, in `bench.soak.analysis`): every notification frame (which
connection of which client, live or replayed, the publisher's stamp, when it
arrived), every close the server caused (code), every refused handshake (HTTP
status or error), and every acknowledgement the hub refused.

Commands (one JSON line each, `{"id": n, "cmd": ..., ...}`, answered by one
line `{"id": n, "ok": true, ...}`): `start`, `status`, `settle`, `collect`, and
`exit`.
"""

import asyncio
import contextlib
import json
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bench.clients import raise_fd_limit, run_event_loop

NATIVE_PATH = "/ws/notifications/"
SIGNALR_PATH = "/hubs/workflow"
RECORD_SEPARATOR = "\x1e"
SIGNALR_HANDSHAKE = json.dumps({"protocol": "json", "version": 1}) + RECORD_SEPARATOR
SIGNALR_PING = json.dumps({"type": 6}) + RECORD_SEPARATOR
SIGNALR_PING_INTERVAL = 10.0  # the hub drops a SignalR client it has not heard from for 30 s
STAMP_KEY = "soak"
OPEN_TIMEOUT = 15.0
FIRST_CONNECTS_AT_ONCE = 32  # per process, for the first connection of each client only
ABNORMAL_CLOSURE = 1006  # no close frame: the server process died or the network broke

# The `live` field of a receipt.
LIVE, REPLAYED, UNKNOWN = 1, 0, -1  # SignalR frames do not say whether they are replayed


@dataclass(frozen=True)
class ClientSpec:
    key: int
    kind: str
    protocol: str
    token: str

    @property
    def acks(self) -> bool:
        return self.kind != "silent"

    @property
    def flaky(self) -> bool:
        return self.kind == "flaky"


@dataclass
class Recorder:
    """Everything this process's clients saw; `collect` hands it to the driver."""

    receipts: list[tuple[int, int, int, int, float, float]] = field(default_factory=list)
    server_closes: list[tuple[float, str]] = field(default_factory=list)  # (when, "<protocol> <code>")
    handshake_failures: list[tuple[float, str]] = field(default_factory=list)  # (when, "HTTP 503" or an error)
    ack_errors: Counter = field(default_factory=Counter)
    signalr_close_errors: Counter = field(default_factory=Counter)
    client_errors: Counter = field(default_factory=Counter)
    acks_unanswered: int = 0  # SignalR acks whose connection closed before the completion came
    connections: int = 0
    stray_frames: int = 0

    def receipt(self, key: int, connection: int, stamp: object, live: int) -> None:
        """One notification frame: [key, connection, seq, live, published at, received at]."""
        received = time.time()
        if not isinstance(stamp, dict) or not isinstance(stamp.get("seq"), int):
            self.stray_frames += 1
            return
        self.receipts.append((key, connection, stamp["seq"], live, float(stamp.get("t", 0)), received))


class Session:
    """One WebSocket connection of a client, from the accepted handshake to the close."""

    def __init__(self, client: "Client", websocket: ClientConnection, number: int) -> None:
        self.client = client
        self.websocket = websocket
        self.number = number
        self.recorder = client.swarm.recorder
        self.up = False  # hello (native) or the handshake answer (SignalR) arrived
        self.leaving = False  # the client itself is closing (flaky)
        self.tasks: list[asyncio.Task] = []

    async def run(self) -> str:
        """Read until the connection ends; returns 'left' (we closed it), 'dropped' (was up) or 'failed'."""
        try:
            await self.read()
            # Only a refused SignalR handshake returns before the close: the server closes right after it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.websocket.wait_closed(), 2)
        except ConnectionClosed:
            pass
        except Exception as error:  # a frame this client cannot parse: a finding, not a reason to stop
            self.recorder.client_errors[f"{type(error).__name__}: {error}"[:120]] += 1
        finally:
            for task in self.tasks:
                task.cancel()
        if self.leaving:
            return "left"
        close = self.websocket.protocol.close_rcvd
        code = close.code if close is not None else ABNORMAL_CLOSURE
        self.recorder.server_closes.append((time.time(), f"{self.client.spec.protocol} {code}"))
        return "dropped" if self.up else "failed"

    async def read(self) -> None:
        raise NotImplementedError

    def went_up(self) -> None:
        self.up = True
        self.recorder.connections += 1
        self.client.connected = self.client.arrived = True
        if self.client.spec.flaky:
            self.tasks.append(asyncio.create_task(self._leave_later()))

    async def _leave_later(self) -> None:
        await asyncio.sleep(self.client.swarm.rng.uniform(*self.client.swarm.flaky_up))
        if self.client.swarm.settling:
            return  # the soak is over: stay, so the replay brings whatever is left
        self.leaving = True
        await self.websocket.close()


class NativeSession(Session):
    async def read(self) -> None:
        acks = self.client.spec.acks
        async for raw in self.websocket:
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "notification":
                live = LIVE if frame.get("replayed") is False else REPLAYED
                self.recorder.receipt(self.client.spec.key, self.number, (frame.get("data") or {}).get(STAMP_KEY), live)
                if acks:
                    await self.websocket.send(json.dumps({"type": "ack", "id": frame["id"]}))
            elif kind == "hello":
                self.went_up()
            elif kind == "error" and frame.get("request") == "ack":
                self.recorder.ack_errors[f"native {frame.get('code')}"] += 1


class SignalRSession(Session):
    """The JSON hub protocol over a plain WebSocket (what @microsoft/signalr does with skipNegotiation)."""

    async def read(self) -> None:
        acks = self.client.spec.acks
        pending: set[str] = set()
        invocation_ids = iter(range(1, 1 << 62))
        buffer = ""
        await self.websocket.send(SIGNALR_HANDSHAKE)
        try:
            async for raw in self.websocket:
                buffer += raw if isinstance(raw, str) else raw.decode()
                *records, buffer = buffer.split(RECORD_SEPARATOR)
                for record in records:
                    if not record.strip():
                        continue
                    message = json.loads(record)
                    if not self.up:
                        if "error" in message:
                            failure = f"SignalR handshake: {message['error']}"
                            self.recorder.handshake_failures.append((time.time(), failure))
                            return
                        self.went_up()
                        self.tasks.append(asyncio.create_task(self._ping()))
                        continue
                    kind = message.get("type")
                    if kind == 1:
                        argument = (message.get("arguments") or [None])[0]
                        if not isinstance(argument, dict) or "notificationId" not in argument:
                            continue  # NotificationsRead and the like
                        self.recorder.receipt(self.client.spec.key, self.number, argument.get(STAMP_KEY), UNKNOWN)
                        if acks:
                            invocation_id = str(next(invocation_ids))
                            pending.add(invocation_id)
                            call = {
                                "type": 1,
                                "invocationId": invocation_id,
                                "target": "AcknowledgeNotification",
                                "arguments": [argument["notificationId"]],
                            }
                            await self.websocket.send(json.dumps(call) + RECORD_SEPARATOR)
                    elif kind == 3:
                        pending.discard(message.get("invocationId"))
                        if "error" in message:
                            self.recorder.ack_errors[f"signalr {message['error']}"] += 1
                    elif kind == 7 and message.get("error"):
                        self.recorder.signalr_close_errors[message["error"]] += 1
        finally:
            self.recorder.acks_unanswered += len(pending)

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(SIGNALR_PING_INTERVAL)
            with contextlib.suppress(ConnectionClosed):
                await self.websocket.send(SIGNALR_PING)


class Client:
    """One user's app: a connection at a time, reconnecting on its own (see the module docstring)."""

    def __init__(self, spec: ClientSpec, swarm: "Swarm") -> None:
        self.spec = spec
        self.swarm = swarm
        self.connected = False
        self.arrived = False  # connected at least once
        self.connections = 0
        self.task: asyncio.Task | None = None

    async def run(self) -> None:
        failures = 0
        first = True
        while True:
            ending = await self._connect_once(first=first)
            first = False
            self.connected = False
            if ending == "left":
                failures = 0
                await asyncio.sleep(self.swarm.rng.uniform(*self.swarm.flaky_down))
                continue
            failures = 1 if ending == "dropped" else failures + 1
            await asyncio.sleep(self.backoff(failures))

    def backoff(self, attempt: int) -> float:
        """About 1, 2, 4, 8 ... seconds up to the cap, each ±50 %."""
        return min(self.swarm.backoff_cap, 2.0 ** (attempt - 1)) * self.swarm.rng.uniform(0.5, 1.5)

    async def _connect_once(self, *, first: bool) -> str:
        self.connections += 1
        path = NATIVE_PATH if self.spec.protocol == "native" else SIGNALR_PATH
        gate = self.swarm.first_connects if first else contextlib.nullcontext()
        try:
            async with gate:
                websocket = await asyncio.wait_for(
                    connect(
                        self.swarm.ws_base + path,
                        additional_headers={"Authorization": f"Bearer {self.spec.token}"},
                        open_timeout=None,  # bounded by wait_for
                        close_timeout=2,
                        max_size=2**20,
                    ),
                    OPEN_TIMEOUT,
                )
        except InvalidStatus as refused:
            self.swarm.recorder.handshake_failures.append((time.time(), f"HTTP {refused.response.status_code}"))
            return "failed"
        except Exception as error:  # refused, reset, timed out, a malformed handshake answer
            self.swarm.recorder.handshake_failures.append((time.time(), type(error).__name__))
            return "failed"
        session_class = NativeSession if self.spec.protocol == "native" else SignalRSession
        session = session_class(self, websocket, self.connections)
        try:
            return await session.run()
        finally:
            await websocket.close()


@dataclass
class Swarm:
    ws_base: str = ""
    backoff_cap: float = 30.0
    flaky_up: tuple[float, float] = (3.0, 30.0)
    flaky_down: tuple[float, float] = (0.2, 3.0)
    rng: random.Random = field(default_factory=random.Random)
    recorder: Recorder = field(default_factory=Recorder)
    clients: dict[int, Client] = field(default_factory=dict)
    settling: bool = False
    first_connects: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(FIRST_CONNECTS_AT_ONCE))

    async def cmd_start(self, clients: list[dict], settings: dict) -> dict:
        """Start every client (each connects, then lives on its own); answers at once."""
        self.ws_base = settings["ws_base"]
        self.backoff_cap = settings["backoff_cap"]
        self.flaky_up = tuple(settings["flaky_up"])
        self.flaky_down = tuple(settings["flaky_down"])
        self.rng = random.Random(settings.get("seed"))
        for spec in clients:
            client = Client(ClientSpec(**spec), self)
            client.task = asyncio.create_task(client.run())
            self.clients[client.spec.key] = client
        return {"started": len(clients)}

    async def cmd_status(self) -> dict:
        """Clients by kind: in all, connected now, connected at least once."""
        total, connected, arrived = Counter(), Counter(), Counter()
        for client in self.clients.values():
            total[client.spec.kind] += 1
            connected[client.spec.kind] += client.connected
            arrived[client.spec.kind] += client.arrived
        return {"total": dict(total), "connected": dict(connected), "arrived": dict(arrived)}

    async def cmd_settle(self) -> dict:
        """The soak is over: flaky clients stop leaving (they still reconnect after a drop)."""
        self.settling = True
        return {}

    async def cmd_collect(self) -> dict:
        recorder = self.recorder
        return {
            "receipts": recorder.receipts,
            "server_closes": recorder.server_closes,
            "handshake_failures": recorder.handshake_failures,
            "ack_errors": dict(recorder.ack_errors),
            "signalr_close_errors": dict(recorder.signalr_close_errors),
            "client_errors": dict(recorder.client_errors),
            "acks_unanswered": recorder.acks_unanswered,
            "connections": recorder.connections,
            "stray_frames": recorder.stray_frames,
        }

    async def stop(self) -> None:
        for client in self.clients.values():
            client.task.cancel()
        await asyncio.gather(*(client.task for client in self.clients.values()), return_exceptions=True)


def _write(line: dict) -> None:
    sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def serve(reader: asyncio.StreamReader) -> None:
    """Answer commands until `exit` or the end of stdin."""
    swarm = Swarm()
    pending: set[asyncio.Task] = set()

    async def run(command: dict) -> None:
        name, request_id = command.pop("cmd"), command.pop("id")
        try:
            _write({"id": request_id, "ok": True, **await getattr(swarm, f"cmd_{name}")(**command)})
        except Exception as error:  # reported to the driver, which stops the soak with it
            _write({"id": request_id, "ok": False, "error": f"{type(error).__name__}: {error}"})

    while line := await reader.readline():
        command = json.loads(line)
        if command.get("cmd") == "exit":
            break
        task = asyncio.create_task(run(command))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await swarm.stop()


async def main() -> None:
    raise_fd_limit()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(sys.stdin.fileno(), "rb"))
    await serve(reader)


if __name__ == "__main__":
    run_event_loop(main())
