"""How much a publish costs: `python -m bench.publish_rate` (docs/performance.md, "The publish path").

Starts one hub web process (the Procfile's web line, `--server daphne|uvicorn`)
with `--recipients` users connected (each acknowledging what it receives), warms
it up, then sends `--publishes` single-recipient `POST /api/notifications/`
from `--concurrency` requests in flight, round-robin over the recipients, and
prints one line:

    server=uvicorn publishes=500 seconds=4.35 publishes_per_s=114.9 cpu_ms_per_publish=5.80

`cpu_ms_per_publish` is the web process's CPU (user + system, from /proc) from
the first request until every notification arrived, divided by the publishes:
the request, its delivery and the recipient's ack, everything one publish makes
the web process do. It is the figure to compare between commits; the
publishes per second also depend on what else the machine runs. `--repo DIR`
serves another checkout's code (the commit before a change, say) with this
harness, so two commits can be run in turn on the same database.
`--idempotency-keys` sends each publish with its own Idempotency-Key.

Uses the bench's database and Redis (`--database-url`, `--redis-url`): Redis
is flushed and the notification tables emptied before each run.
"""

import argparse
import asyncio
import uuid

from bench import profile
from bench.options import one_server_parser
from bench.publishers import ApiPublisher, PublishError
from bench.stack import Server, measured_on_one_server
from bench.swarm import ClientPool

HUB_PATH = "/ws/notifications/"
WARM_UP_PUBLISHES = 50
PHASE = "publish-rate"
EVENT = "bench.publish_rate"
# Fixed, so tokens minted by one run are valid in the next.
SECRET_KEY = "bench-publish-rate-not-a-secret-0123456789-abcdefghijklmnopqrstuvwxy"  # noqa: S105 - bench only


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = one_server_parser("bench.publish_rate", __doc__, measured="publishes")
    add = parser.add_argument
    add("--publishes", type=int, default=500, help="publishes sent and measured")
    add("--concurrency", type=int, default=4, help="publish requests in flight")
    add("--recipients", type=int, default=10, help="connected users the publishes go to, in turn")
    add("--idempotency-keys", action="store_true", help="send each publish with its own Idempotency-Key")
    return parser.parse_args(argv)


def population(options: argparse.Namespace):
    """The bench's users, department and publisher, made afresh (the population is small)."""
    import django

    django.setup()
    from bench import fixtures

    fixtures.ensure_database(options.database_url)
    fixtures.migrate_and_flush()
    return fixtures.create_population(users=options.recipients, department_size=options.recipients)


class KeyedPublisher(ApiPublisher):
    """An ApiPublisher whose every request carries a new Idempotency-Key."""

    async def _post(self, recipients: dict, *, event: str, phase: str, seq: int) -> str:
        body = self._body(recipients, event=event, phase=phase, seq=seq)
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        response = await self.http.post("/api/notifications/", json=body, headers=headers)
        if response.status_code != 201:
            raise PublishError(f"publish answered {response.status_code}: {response.text[:300]}")
        return response.json()["id"]


async def publish_all(publisher: ApiPublisher, *, count: int, first_seq: int, recipients: int, concurrency: int):
    sequence = iter(range(first_seq, first_seq + count))

    async def sender() -> None:
        for seq in sequence:
            await publisher.to_user(index=seq % recipients, event=EVENT, phase=PHASE, seq=seq)

    await asyncio.gather(*(sender() for _ in range(concurrency)))


async def measure(options: argparse.Namespace, population, server: Server) -> str:
    pool = ClientPool(1)
    await pool.start()
    url = f"ws://127.0.0.1:{server.port}{HUB_PATH}"
    publisher_class = KeyedPublisher if options.idempotency_keys else ApiPublisher
    publisher = publisher_class(
        base_url=f"http://127.0.0.1:{server.port}",
        token=population.publisher_token,
        user_ids=population.user_ids,
        department_id=population.department_id,
    )
    try:
        conns = [(index, url, {"Authorization": f"Bearer {token}"}) for index, token in enumerate(population.tokens)]
        connected = await pool.connect(conns, concurrency=8)
        if connected.failed:
            raise RuntimeError(f"connects failed: {connected.errors}\n{server.log_tail()}")
        await pool.phase(PHASE, ack="now")
        await publish_all(publisher, count=WARM_UP_PUBLISHES, first_seq=0, recipients=options.recipients, concurrency=2)
        if not await pool.wait_received(WARM_UP_PUBLISHES, timeout=30):
            raise RuntimeError("the warm-up's notifications did not all arrive")
        await asyncio.sleep(1.0)
        async with profile.spent_by(server, profile_to=options.profile) as spent:
            await publish_all(
                publisher,
                count=options.publishes,
                first_seq=WARM_UP_PUBLISHES,
                recipients=options.recipients,
                concurrency=options.concurrency,
            )
            if not await pool.wait_received(WARM_UP_PUBLISHES + options.publishes, timeout=60):
                raise RuntimeError(f"notifications did not all arrive\n{server.log_tail()}")
        return spent.line(options.server, "publish", "publishes", options.publishes)
    finally:
        await publisher.close()
        await pool.stop()


def main(argv: list[str] | None = None) -> None:
    options = parse_options(argv)
    print(measured_on_one_server(options, secret_key=SECRET_KEY, population=population, measure=measure))


if __name__ == "__main__":
    main()
