"""The soak's HTTP: a publisher at a steady rate through `POST /api/notifications/`, and device registration.

The publisher is a service user holding `notifications.publish_notification`,
scoped to every recipient and the soak's one event name. Publish `seq` is due
at `seq / rate` seconds after the start, whether or not earlier ones were
answered (up to `MAX_IN_FLIGHT` at once; past that it waits, and counts the
publish as late). Each carries an `Idempotency-Key` and, in its
data, the stamp `{"soak": {"seq", "t"}}` (`t`: the wall-clock time of its
first attempt), which the clients record: a notification's latency is receipt
time minus `t`, so time spent retrying counts too.

On a connection error, a timeout, a 429 or any 5xx the same request (same
body, same key) is sent again after `Retry-After` if given, else after a
jittered backoff, for up to `GIVE_UP_AFTER` seconds after its first failure
(a request that waited behind a backlog has not been failing all that time).
Retrying a 5xx with the same key is safe by the API's idempotency contract (a
200 answers a request that had in fact been published). Every answer and
every failure to get one is counted by endpoint (`HttpTally`).
"""

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from bench.soak.chaos import Schedule
from bench.soak.population import SOAK_EVENT, Population

PUBLISH_PATH = "/api/notifications/"
DEVICES_PATH = "/api/devices/"
# Publishes retried through an outage stay in flight; a run must not stall on them (the schedule would slip).
MAX_IN_FLIGHT = 5_000
GIVE_UP_AFTER = 120.0
REQUEST_TIMEOUT = 15.0
RETRY_CAP = 5.0


@dataclass
class HttpTally:
    """Every HTTP status the soak got, and every request that got none (by exception name), per endpoint."""

    outcomes: dict[str, Counter] = field(default_factory=dict)
    server_error_times: list[float] = field(default_factory=list)

    def count(self, endpoint: str, outcome: int | str) -> None:
        self.outcomes.setdefault(endpoint, Counter())[str(outcome)] += 1
        if isinstance(outcome, int) and outcome >= 500:
            self.server_error_times.append(time.time())

    def server_errors(self) -> dict[str, int]:
        """5xx answers per endpoint."""
        return {
            endpoint: sum(count for outcome, count in outcomes.items() if outcome.isdigit() and int(outcome) >= 500)
            for endpoint, outcomes in self.outcomes.items()
        }


@dataclass
class Publish:
    seq: int
    target: str  # "user" or "department"
    target_id: int  # a user key, or a department id
    recipient_keys: tuple[int, ...]
    sent_at: float = 0.0  # first attempt, time.time(); the stamp's `t`
    answered_at: float = 0.0  # the final answer (or giving up), time.time()
    attempts: int = 0
    status: int | None = None  # the last HTTP status
    notification_id: str | None = None
    replayed: bool = False  # answered 200 Idempotent-Replayed: an earlier attempt had published it
    gave_up: bool = False

    @property
    def published(self) -> bool:
        return self.notification_id is not None


class Targets:
    """Who each publish goes to: a department (`department_share`), an always-connected native user
    (`probe_share`: samples for the live-latency series), or any user."""

    def __init__(self, population: Population, *, department_share: float, probe_share: float, rng) -> None:
        self.population = population
        self.department_share = department_share
        self.probe_share = probe_share
        self.rng = rng
        self.probes = population.keys_of("native")
        self.departments = sorted(population.departments)

    def pick(self, seq: int) -> Publish:
        draw = self.rng.random()
        if draw < self.department_share and self.departments:
            department_id = self.rng.choice(self.departments)
            members = tuple(self.population.departments[department_id])
            return Publish(seq=seq, target="department", target_id=department_id, recipient_keys=members)
        if draw < self.department_share + self.probe_share and self.probes:
            key = self.rng.choice(self.probes)
        else:
            key = self.rng.randrange(len(self.population.users))
        return Publish(seq=seq, target="user", target_id=key, recipient_keys=(key,))


def _retry_after(response: httpx.Response | None) -> float | None:
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date: use the backoff
        return None


class Publisher:
    def __init__(
        self, *, base_url: str, population: Population, targets: Targets, rate: float, run_id: str, tally: HttpTally
    ) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {population.publisher_token}", "Content-Type": "application/json"},
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
            timeout=httpx.Timeout(REQUEST_TIMEOUT, pool=None),
        )
        self.population = population
        self.targets = targets
        self.rate = rate
        self.run_id = run_id
        self.tally = tally
        self.publishes: list[Publish] = []
        self.late = 0  # publishes that left over a second after they were due (MAX_IN_FLIGHT reached)
        self.rng = random.Random()

    async def run(self, *, schedule: Schedule, started: float) -> None:
        """Publish at `rate` from `started` (time.monotonic()) as long as `schedule` says, then wait for answers."""
        in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        tasks: set[asyncio.Task] = set()

        def finished(task: asyncio.Task) -> None:
            tasks.discard(task)
            in_flight.release()

        seq = 0
        while seq / self.rate < schedule.publish_seconds or not schedule.final:
            delay = started + seq / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await in_flight.acquire()
            if time.monotonic() - (started + seq / self.rate) > 1:
                self.late += 1
            publish = self.targets.pick(seq)
            self.publishes.append(publish)
            task = asyncio.create_task(self._publish(publish))
            tasks.add(task)
            task.add_done_callback(finished)
            seq += 1
        if tasks:
            await asyncio.gather(*tasks)

    async def close(self) -> None:
        await self.http.aclose()

    async def _publish(self, publish: Publish) -> None:
        publish.sent_at = time.time()
        try:
            await self._send_until_answered(publish)
        finally:
            publish.answered_at = time.time()

    async def _send_until_answered(self, publish: Publish) -> None:
        if publish.target == "department":
            recipients = {"departments": [publish.target_id]}
        else:
            recipients = {"users": [self.population.users[publish.target_id].user_id]}
        body = json.dumps(
            {
                "event": SOAK_EVENT,
                "title": f"Soak notification {publish.seq}",
                "body": "Sent by the chaos soak (make soak).",
                "recipients": recipients,
                "data": {"soak": {"seq": publish.seq, "t": publish.sent_at}},
            }
        )
        headers = {"Idempotency-Key": f"soak-{self.run_id}-{publish.seq}"}
        first_failure = None
        while True:
            publish.attempts += 1
            response = None
            try:
                response = await self.http.post(PUBLISH_PATH, content=body, headers=headers)
            except httpx.HTTPError as error:
                self.tally.count("publish", type(error).__name__)
            else:
                publish.status = response.status_code
                self.tally.count("publish", response.status_code)
                if response.status_code in (200, 201):
                    publish.notification_id = response.json()["id"]
                    publish.replayed = response.status_code == 200
                    return
                if response.status_code != 429 and response.status_code < 500:
                    return  # refused for good (a harness bug, or the API changed): counted, not retried
            first_failure = first_failure or time.time()
            if time.time() - first_failure > GIVE_UP_AFTER:
                publish.gave_up = True
                return
            backoff = min(RETRY_CAP, 0.25 * 2 ** (publish.attempts - 1)) * self.rng.uniform(0.5, 1.5)
            await asyncio.sleep(_retry_after(response) or backoff)


async def register_devices(*, base_url: str, population: Population, tally: HttpTally, concurrency: int = 8) -> int:
    """`POST /api/devices/` for every user who has a device, as that user; returns how many were registered."""
    gate = asyncio.Semaphore(concurrency)

    async def register(http: httpx.AsyncClient, user) -> bool:
        body = {"token": user.device_token, "platform": "android", "app_install_id": f"soak-install-{user.key}"}
        async with gate:
            for attempt in range(1, 6):
                try:
                    response = await http.post(
                        DEVICES_PATH, json=body, headers={"Authorization": f"Bearer {user.token}"}
                    )
                except httpx.HTTPError as error:
                    tally.count("devices", type(error).__name__)
                else:
                    tally.count("devices", response.status_code)
                    if response.status_code in (200, 201):
                        return True
                    if response.status_code != 429 and response.status_code < 500:
                        return False
                await asyncio.sleep(0.5 * attempt)
        return False

    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT) as http:
        results = await asyncio.gather(*(register(http, user) for user in population.users if user.device_token))
    return sum(results)
