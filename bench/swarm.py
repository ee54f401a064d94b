"""The driver's side of the client swarms: start `bench.clients` processes and command them together.

Connection keys are integers chosen by the driver (user index); key `k` lives in
process `k % processes`, so a department's members are spread evenly.
"""

import asyncio
import itertools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class SwarmError(RuntimeError):
    """A client process failed a command or died."""


@dataclass
class ConnectResult:
    connected: int
    failed: int
    seconds: float
    errors: list[str]


@dataclass
class Collected:
    receipts: list[tuple[int, int, float, float]]  # (key, seq, sent at, received at), time.time()
    stray: int
    acks_sent: int
    lost: int
    lost_reasons: list[str]
    open: int
    # Clients dropped by the server in a storm phase: (key, dropped at, tries, hello at, back at), time.time();
    # hello at and back at (its replay complete) are None while it is not back.
    reconnects: list[tuple[int, float, int, float | None, float | None]] = field(default_factory=list)


@dataclass
class _Worker:
    process: asyncio.subprocess.Process
    answers: dict[int, asyncio.Future] = field(default_factory=dict)
    received: int = 0
    reader: asyncio.Task | None = None


class ClientPool:
    """N client processes, commanded as one.

    `module` is the client program each process runs (`python -m <module>`): the bench's swarm by default;
    the soak runs its own (`bench.soak.client`) over the same stdin/stdout plumbing.
    """

    def __init__(self, processes: int, module: str = "bench.clients") -> None:
        self.size = processes
        self.module = module
        self._workers: list[_Worker] = []
        self._ids = itertools.count(1)

    async def start(self) -> None:
        for _ in range(self.size):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                self.module,
                cwd=REPO,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=2**27,  # a phase's receipts come back as one line
            )
            worker = _Worker(process=process)
            worker.reader = asyncio.create_task(self._read(worker))
            self._workers.append(worker)

    @property
    def pids(self) -> list[int]:
        return [worker.process.pid for worker in self._workers]

    @property
    def received(self) -> int:
        """Benchmark notifications received in the current phase, as last reported."""
        return sum(worker.received for worker in self._workers)

    async def stop(self) -> None:
        for worker in self._workers:
            if worker.process.returncode is None:
                worker.process.stdin.write(b'{"cmd": "exit"}\n')
                await worker.process.stdin.drain()
        for worker in self._workers:
            try:
                await asyncio.wait_for(worker.process.wait(), 10)
            except TimeoutError:
                worker.process.kill()
                await worker.process.wait()
            if worker.reader:
                worker.reader.cancel()
        self._workers = []

    # --- commands -----------------------------------------------------------------
    async def connect(self, conns: list[tuple[int, str, dict]], *, concurrency: int = 32) -> ConnectResult:
        """Open [(key, url, headers)] and wait for every hello."""
        shares = [[] for _ in self._workers]
        for key, url, headers in conns:
            shares[key % self.size].append([key, url, headers])
        answers = await asyncio.gather(
            *(
                self._ask(worker, "connect", conns=share, concurrency=concurrency)
                for worker, share in zip(self._workers, shares, strict=True)
                if share
            )
        )
        return ConnectResult(
            connected=sum(a["connected"] for a in answers),
            failed=sum(a["failed"] for a in answers),
            seconds=max((a["seconds"] for a in answers), default=0.0),
            errors=[error for a in answers for error in a["errors"]][:5],
        )

    async def close(self, keys: list[int]) -> None:
        shares = [[] for _ in self._workers]
        for key in keys:
            shares[key % self.size].append(key)
        await asyncio.gather(
            *(self._ask(worker, "close", keys=share) for worker, share in zip(self._workers, shares, strict=True))
        )

    async def phase(self, name: str | None, *, ack: str = "none", reconnect: bool = False) -> None:
        """Start a measurement phase on every client (resets receipts and progress); with `reconnect`, clients the
        server drops reconnect on their own, with the JS client's backoff (see bench.clients)."""
        await self._ask_all("phase", name=name, ack=ack, reconnect=reconnect)
        for worker in self._workers:
            worker.received = 0

    async def back(self) -> tuple[list[int], int]:
        """(keys back with their replay since the last call, dropped clients not back yet), in a storm phase."""
        answers = await self._ask_all("back")
        return [key for a in answers for key in a["back"]], sum(a["away"] for a in answers)

    async def collect(self) -> Collected:
        answers = await self._ask_all("collect")
        return Collected(
            receipts=[tuple(r) for a in answers for r in a["receipts"]],
            stray=sum(a["stray"] for a in answers),
            acks_sent=sum(a["acks_sent"] for a in answers),
            lost=sum(a["lost"] for a in answers),
            lost_reasons=[reason for a in answers for reason in a["lost_reasons"]][:5],
            open=sum(a["open"] for a in answers),
            reconnects=[tuple(r) for a in answers for r in a["reconnects"]],
        )

    async def ack_held(self) -> tuple[int, float, float]:
        """Send all held acks now; returns (acks sent, first send time, last send time)."""
        answers = await self._ask_all("ack_held")
        return (
            sum(a["sent"] for a in answers),
            min(a["first"] for a in answers),
            max(a["last"] for a in answers),
        )

    async def wait_received(self, count: int, *, timeout: float) -> bool:
        """Wait until the swarms report `count` receipts in this phase (False on timeout)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.received < count:
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    # --- plumbing -------------------------------------------------------------------
    async def _ask_all(self, cmd: str, **arguments) -> list[dict]:
        return await asyncio.gather(*(self._ask(worker, cmd, **arguments) for worker in self._workers))

    async def _ask(self, worker: _Worker, cmd: str, **arguments) -> dict:
        request_id = next(self._ids)
        answer = asyncio.get_running_loop().create_future()
        worker.answers[request_id] = answer
        worker.process.stdin.write(json.dumps({"id": request_id, "cmd": cmd, **arguments}).encode() + b"\n")
        await worker.process.stdin.drain()
        result = await answer
        if not result.pop("ok"):
            raise SwarmError(f"client process {worker.process.pid}: {cmd} failed: {result['error']}")
        return result

    async def _read(self, worker: _Worker) -> None:
        stdout = worker.process.stdout
        while line := await stdout.readline():
            message = json.loads(line)
            if "progress" in message:
                worker.received = message["progress"]
            else:
                worker.answers.pop(message.pop("id")).set_result(message)
        error = SwarmError(f"client process {worker.process.pid} exited")
        for answer in worker.answers.values():
            if not answer.done():
                answer.set_exception(error)
