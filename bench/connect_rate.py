"""How much a hub connect costs: `python -m bench.connect_rate` (docs/performance.md, "Connect cost").

Starts one hub web process (the Procfile's web line, `--server daphne|uvicorn`),
warms it up, then opens `--connects` connections from `--client-processes`
swarm processes (`bench.clients`, `--concurrency` handshakes in flight each),
each waiting for its `hello`, and prints one line:

    server=uvicorn connects=1000 seconds=6.41 connects_per_s=156.0 cpu_ms_per_connect=6.38

`cpu_ms_per_connect` is the web process's CPU (user + system, from /proc)
from the first handshake until every hello arrived, divided by the connects:
the figure to compare between commits, since the connects per second also
depend on what else the machine runs. `--repo DIR` serves another checkout's
code (an older commit, say) with this harness, so two commits can be run in
turn on the same database; the users and their tokens are made once and kept
(`--fresh` makes them again).

Uses the bench's database and Redis (`--database-url`, `--redis-url`): Redis
is flushed and the notification tables emptied before each run, so nobody
has anything to replay.
"""

import argparse
import asyncio

from bench import profile
from bench.options import one_server_parser
from bench.stack import Server, measured_on_one_server
from bench.swarm import ClientPool

HUB_PATH = "/ws/notifications/"
WARM_UP_CONNECTS = 20
# Fixed, so tokens minted by one run are valid in the next.
SECRET_KEY = "bench-connect-rate-not-a-secret-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105 - bench only


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = one_server_parser("bench.connect_rate", __doc__, measured="connects")
    add = parser.add_argument
    add("--connects", type=int, default=1_000, help="connections opened and measured")
    add("--concurrency", type=int, default=32, help="handshakes in flight per client process")
    add("--client-processes", type=int, default=1)
    add("--department-size", type=int, default=100, help="the first users are members of one department")
    add("--fresh", action="store_true", help="create the users again")
    return parser.parse_args(argv)


def population(options: argparse.Namespace) -> list[str]:
    """Access tokens of `--connects + WARM_UP_CONNECTS` users (made once, kept in the database)."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from bench import fixtures

    wanted = options.connects + WARM_UP_CONNECTS
    User = get_user_model()
    fixtures.ensure_database(options.database_url)
    call_command("migrate", interactive=False, verbosity=0)
    existing = User.objects.filter(username__startswith=fixtures.USERNAME_PREFIX).count()
    if options.fresh or existing < wanted:
        fixtures.migrate_and_flush()
        fixtures.create_population(users=wanted, department_size=min(options.department_size, wanted))
    fixtures.reset_notifications()
    user_ids = User.objects.filter(username__startswith=fixtures.USERNAME_PREFIX).order_by("username")
    return [fixtures.access_token(user_id) for user_id in user_ids.values_list("pk", flat=True)[:wanted]]


async def measure(options: argparse.Namespace, tokens: list[str], server: Server) -> str:
    pool = ClientPool(options.client_processes)
    await pool.start()
    url = f"ws://127.0.0.1:{server.port}{HUB_PATH}"

    def conns(indexes: range) -> list[tuple[int, str, dict]]:
        return [(index, url, {"Authorization": f"Bearer {tokens[index]}"}) for index in indexes]

    try:
        warm = await pool.connect(conns(range(WARM_UP_CONNECTS)), concurrency=4)
        if warm.failed:
            raise RuntimeError(f"warm-up connects failed: {warm.errors}\n{server.log_tail()}")
        await asyncio.sleep(1.0)
        async with profile.spent_by(server, profile_to=options.profile) as spent:
            result = await pool.connect(
                conns(range(WARM_UP_CONNECTS, WARM_UP_CONNECTS + options.connects)), concurrency=options.concurrency
            )
        if result.failed:
            raise RuntimeError(f"{result.failed} connects failed, e.g. {result.errors}\n{server.log_tail()}")
        return spent.line(options.server, "connect", "connects", options.connects)
    finally:
        await pool.stop()


def main(argv: list[str] | None = None) -> None:
    options = parse_options(argv)
    print(measured_on_one_server(options, secret_key=SECRET_KEY, population=population, measure=measure))


if __name__ == "__main__":
    main()
