"""The driver's side of the soak clients: `bench.soak.client` processes, commanded as one.

The plumbing (processes, one JSON line per command and answer) is the bench's
`ClientPool`; client `k` lives in process `k % processes`.
"""

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

from bench.soak.options import Options
from bench.soak.population import Population
from bench.swarm import ClientPool


@dataclass
class ClientRecords:
    """What every client process recorded (see `bench.soak.client.Recorder`), merged."""

    receipts: list[tuple[int, int, int, int, float, float]] = field(default_factory=list)
    server_closes: list[tuple[float, str]] = field(default_factory=list)  # (when, "<protocol> <code>")
    handshake_failures: list[tuple[float, str]] = field(default_factory=list)  # (when, "HTTP 503" or an error)
    ack_errors: Counter = field(default_factory=Counter)
    signalr_close_errors: Counter = field(default_factory=Counter)
    client_errors: Counter = field(default_factory=Counter)
    acks_unanswered: int = 0
    connections: int = 0
    stray_frames: int = 0


class SoakSwarm(ClientPool):
    def __init__(self, processes: int) -> None:
        super().__init__(processes, module="bench.soak.client")

    async def start_clients(self, population: Population, options: Options, *, ws_base: str) -> int:
        """Start a client for every user who connects (all but the offline ones)."""
        shares: list[list[dict]] = [[] for _ in range(self.size)]
        for user in population.users:
            if user.protocol is not None:
                spec = {"key": user.key, "kind": user.kind, "protocol": user.protocol, "token": user.token}
                shares[user.key % self.size].append(spec)
        answers = await asyncio.gather(
            *(
                self._ask(
                    worker,
                    "start",
                    clients=share,
                    settings={
                        "ws_base": ws_base,
                        "backoff_cap": options.backoff_cap,
                        "flaky_up": options.flaky_up,
                        "flaky_down": options.flaky_down,
                        "seed": None if options.seed is None else options.seed * 1_000 + index,
                    },
                )
                for index, (worker, share) in enumerate(zip(self._workers, shares, strict=True))
            )
        )
        return sum(answer["started"] for answer in answers)

    async def status(self) -> tuple[Counter, Counter, Counter]:
        """Clients by kind: (in all, connected now, connected at least once)."""
        total, connected, arrived = Counter(), Counter(), Counter()
        for answer in await self._ask_all("status"):
            total.update(answer["total"])
            connected.update(answer["connected"])
            arrived.update(answer["arrived"])
        return total, connected, arrived

    async def wait_connected(self, *, timeout: float, progress) -> Counter:
        """Wait until every client is in; returns the kinds still missing some (empty when all are in).

        In: connected now, or for a flaky client (which leaves now and then by design) connected once.
        """
        deadline = time.monotonic() + timeout
        while True:
            total, connected, arrived = await self.status()
            connected["flaky"] = arrived["flaky"]
            missing = total - connected
            progress(f"connecting clients: {sum(connected.values()):,}/{sum(total.values()):,}")
            if not missing or time.monotonic() > deadline:
                return missing
            await asyncio.sleep(0.5)

    async def settle(self) -> None:
        await self._ask_all("settle")

    async def collect(self) -> ClientRecords:
        records = ClientRecords()
        for answer in await self._ask_all("collect"):
            records.receipts.extend(tuple(receipt) for receipt in answer["receipts"])
            records.server_closes.extend(tuple(event) for event in answer["server_closes"])
            records.handshake_failures.extend(tuple(event) for event in answer["handshake_failures"])
            for name in ("ack_errors", "signalr_close_errors", "client_errors"):
                getattr(records, name).update(answer[name])
            records.acks_unanswered += answer["acks_unanswered"]
            records.connections += answer["connections"]
            records.stray_frames += answer["stray_frames"]
        return records
