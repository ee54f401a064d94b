"""The dashboard's bench: its queries and whole page on a week of 1,000,000 deliveries, and what its indexes cost.

    .venv/bin/python -m bench.dashboard --database-url postgres://postgres@127.0.0.1:5432/notifyhub_dashboard_bench

Fills the bench database (emptied first) with SQL (`generate_series`): 1,000 users, ~100 notifications an hour
for a week (16,800), each to 60 of the users, cut at 1,000,000 deliveries in publish order (as fan-out writes
them), in a realistic mix of states, and an FCM attempt log for the pushed and failed ones. Then, per period,
times each statement of `notifications.console.stats`, the whole JSON and the whole page (Django's test client,
signed in as a superuser), as the median of `--runs` runs; the presence reads at 10,000 connections; and a
1,000-row fan-out insert with and without the console's indexes. Prints a Markdown report for docs/performance.md.
"""

import argparse
import asyncio
import os
import secrets
import statistics
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/notifyhub_dashboard_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"

USERS = 1_000
NOTIFICATIONS_PER_HOUR = 100
RECIPIENTS_PER_NOTIFICATION = 60
DELIVERIES = 1_000_000
CONNECTIONS = 10_000

# The state mix, as shares of every delivery (the rest acknowledged); open ones only among the last 10 minutes'.
_FILL_SQL = """
INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
SELECT '!', false, 'dash-user-' || i, 'User', i::text, '', false, true, now()
FROM generate_series(1, %(users)s) AS i;

INSERT INTO notifications_notification (id, event, title, body, data, priority, created_at)
SELECT gen_random_uuid(), 'NewTask', 'Approve document ' || i, '', '{}', 'normal',
    now() - interval '7 days' + (i * interval '7 days' / %(notifications)s) + random() * interval '20 seconds'
FROM generate_series(1, %(notifications)s) AS i;

WITH users AS (SELECT array_agg(id ORDER BY id) AS ids FROM auth_user WHERE username LIKE 'dash-user-%%'),
rows AS (
    SELECT n.id AS notification_id, n.created_at,
        u.ids[1 + (k + abs(hashtext(n.id::text))) %% %(users)s] AS recipient_id,
        random() AS r, random() AS t
    FROM notifications_notification n CROSS JOIN generate_series(0, %(recipients)s - 1) AS k CROSS JOIN users u
    ORDER BY n.created_at DESC, k  -- the newest million: the last hour has its share
    LIMIT %(deliveries)s
), states AS (
    SELECT *, CASE
        WHEN created_at > now() - interval '10 minutes' AND r < 0.10 THEN 'pending'
        WHEN created_at > now() - interval '10 minutes' AND r < 0.25 THEN 'sent'
        WHEN r < 0.55 THEN 'acknowledged'
        WHEN r < 0.80 THEN 'read'
        WHEN r < 0.88 THEN 'pushed'
        WHEN r < 0.93 THEN 'pushed-simulated'
        WHEN r < 0.97 THEN 'failed'
        ELSE 'acknowledged' END AS state
    FROM rows
)
INSERT INTO notifications_delivery (status, attempts, push_attempts, next_attempt_at, sent_at, acknowledged_at,
    read_at, pushed_at, failed_at, failure_reason, last_error, created_at, updated_at, recipient_id,
    notification_id, push_claimed_by, push_simulated)
SELECT
    CASE state WHEN 'pushed-simulated' THEN 'pushed' ELSE state END,
    1, CASE WHEN state IN ('pushed', 'pushed-simulated', 'failed') THEN 1 ELSE 0 END,
    CASE WHEN state IN ('pending', 'sent') THEN created_at + interval '10 seconds' END,
    CASE WHEN state <> 'pending' THEN created_at END,
    CASE WHEN state IN ('acknowledged', 'read') THEN created_at + t ^ 4 * interval '20 seconds' END,
    CASE WHEN state = 'read' THEN created_at + t * interval '2 hours' END,
    CASE WHEN state IN ('pushed', 'pushed-simulated')
        THEN created_at + interval '30 seconds' + t * interval '60 seconds' END,
    CASE WHEN state = 'failed' THEN created_at + interval '30 seconds' + t * interval '5 minutes' END,
    CASE WHEN state <> 'failed' THEN ''
        WHEN t < 0.6 THEN 'no_devices' WHEN t < 0.8 THEN 'push_rejected' WHEN t < 0.95 THEN 'expired'
        ELSE 'push_unavailable' END,
    '', created_at, created_at, recipient_id, notification_id, '', state = 'pushed-simulated'
FROM states
ORDER BY created_at;

INSERT INTO notifications_deliveryattempt (channel, outcome, error, created_at, delivery_id)
SELECT 'fcm', CASE
        WHEN d.push_simulated THEN 'simulated'
        WHEN d.status = 'pushed' THEN 'accepted'
        WHEN d.failure_reason = 'push_rejected' THEN 'rejected'
        WHEN d.failure_reason = 'push_unavailable' THEN 'retry'
        ELSE 'device_gone' END,
    '', coalesce(d.pushed_at, d.failed_at), d.id
FROM notifications_delivery d
WHERE d.status = 'pushed' OR d.failure_reason IN ('push_rejected', 'push_unavailable', 'no_devices')
ORDER BY coalesce(d.pushed_at, d.failed_at);
"""

CONSOLE_INDEXES = {
    "delivery_created_brin": "CREATE INDEX delivery_created_brin ON notifications_delivery USING brin (created_at) "
    "WITH (autosummarize = on)",
    "delivery_failed_at": "CREATE INDEX delivery_failed_at ON notifications_delivery (failed_at) "
    "WHERE status = 'failed'",
}


def median_ms(run: Callable[[], object], runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def fill(progress: Callable[[str], None]) -> dict[str, int]:
    from django.db import connection

    progress(f"filling: {USERS:,} users, a week of notifications, {DELIVERIES:,} deliveries (a minute or two)")
    notifications = NOTIFICATIONS_PER_HOUR * 24 * 7
    with connection.cursor() as cursor:
        cursor.execute(
            _FILL_SQL,
            {
                "users": USERS,
                "notifications": notifications,
                "recipients": RECIPIENTS_PER_NOTIFICATION,
                "deliveries": DELIVERIES,
            },
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE notifications_delivery")
        cursor.execute("VACUUM ANALYZE notifications_deliveryattempt")
        cursor.execute("VACUUM ANALYZE notifications_notification")
        cursor.execute("SELECT status, count(*) FROM notifications_delivery GROUP BY 1 ORDER BY 2 DESC")
        shape = dict(cursor.fetchall())
        cursor.execute("SELECT count(*) FROM notifications_deliveryattempt")
        shape["(fcm attempts)"] = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM notifications_notification")
        shape["(notifications)"] = cursor.fetchone()[0]
        cursor.execute(
            "SELECT pg_size_pretty(pg_relation_size('notifications_delivery')), "
            "pg_size_pretty(pg_relation_size('delivery_created_brin')), "
            "pg_size_pretty(pg_relation_size('delivery_failed_at')), "
            "pg_size_pretty(pg_relation_size('attempt_created_brin'))"
        )
        table, brin, failed, attempt_brin = cursor.fetchone()
    progress(f"deliveries {table}; indexes: BRIN {brin}, failed_at {failed}, attempts' BRIN {attempt_brin}")
    shape["sizes"] = f"deliveries table {table}; BRIN {brin}; failed_at {failed}; attempts' BRIN {attempt_brin}"  # type: ignore[assignment]
    return shape


def time_queries(runs: int) -> list[tuple[str, dict[str, float]]]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from notifications.console.stats import Period

    operator = get_user_model().objects.create_superuser("dash-operator", "ops@example.com", secrets.token_hex(8))
    client = Client()
    client.force_login(operator)
    return [(period.key, time_period(period, client, runs)) for period in Period]


def time_period(period, client, runs: int) -> dict[str, float]:
    from django.utils import timezone

    from notifications.console import stats
    from notifications.console.dashboard import dashboard_numbers

    now = timezone.now()
    since = now - period.length
    return {
        "published": median_ms(
            lambda: stats.Notification.objects.filter(created_at__gte=since, created_at__lt=now).count(), runs
        ),
        "states + percentiles": median_ms(
            lambda: stats.delivery_aggregates(since, now, sample=period.percentile_sample), runs
        ),
        "push outcomes": median_ms(lambda: stats.push_outcomes(since, now), runs),
        "backlog": median_ms(lambda: stats.backlog(now), runs),
        "series": median_ms(lambda: stats.series(period, since, now), runs),
        "recent failures": median_ms(lambda: stats.recent_failures(since), runs),
        "all numbers": median_ms(lambda: dashboard_numbers(period), runs),
        "JSON": median_ms(lambda: _ok(client.get("/admin/console/dashboard.json", {"period": period.key})), runs),
        "page": median_ms(lambda: _ok(client.get("/admin/", {"period": period.key})), runs),
    }


def _ok(response) -> None:
    assert response.status_code == 200, response.status_code


def time_fanout_insert(runs: int) -> tuple[float, float]:
    """A 1,000-row fan-out insert (rolled back), with the console's delivery indexes and without them."""
    from django.db import connection, transaction

    def fan_out() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO notifications_notification (id, event, title, body, data, priority, created_at) "
                "VALUES (gen_random_uuid(), 'NewTask', 'Fan-out', '', '{}', 'normal', now()) RETURNING id"
            )
            [notification_id] = cursor.fetchone()
            cursor.execute(
                "INSERT INTO notifications_delivery (status, attempts, push_attempts, failure_reason, last_error, "
                "created_at, updated_at, recipient_id, notification_id, push_claimed_by, push_simulated) "
                "SELECT 'pending', 0, 0, '', '', now(), now(), id, %s, '', false "
                "FROM auth_user WHERE username LIKE 'dash-user-%%' LIMIT 1000",
                [notification_id],
            )
            transaction.set_rollback(True)

    with_indexes = median_ms(fan_out, runs)
    with connection.cursor() as cursor:
        for name in CONSOLE_INDEXES:
            cursor.execute(f"DROP INDEX {name}")
    without = median_ms(fan_out, runs)
    with connection.cursor() as cursor:
        for statement in CONSOLE_INDEXES.values():
            cursor.execute(statement)
    return with_indexes, without


def time_presence(runs: int) -> tuple[float, float]:
    """At 10,000 connections of 5,000 users on two processes: the tallies' read, and the SCAN that counts users."""
    from notifications import presence

    client = presence._client()
    client.flushdb()
    processes = ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"]
    for process in processes:
        client.set(presence.process_key(process), "0", ex=600)
        client.zadd(presence.PROCESSES_KEY, {process: time.time() + 600})
        client.hset(
            f"{presence.PROCESS_TALLY_KEY_PREFIX}{process}", mapping={"native": 4000, "signalr": 1000, "users": 2600}
        )
    connections = [
        presence.LiveConnection(
            user_id=1 + i % 5_000,
            connection_id=f"hub~{processes[i % 2]}~native~{int(time.time())}~{i:016x}",
            department_ids=(),
            document_ids=(),
        )
        for i in range(CONNECTIONS)
    ]
    asyncio.run(presence.connections_alive(connections))
    tallies = median_ms(presence.web_processes, runs)
    scan = median_ms(presence.online_counts, runs)
    client.flushdb()
    return tallies, scan


def report(shape: dict, rows, fanout: tuple[float, float], presence_ms: tuple[float, float], runs: int) -> str:
    columns = list(rows[0][1])
    lines = [
        f"Data: {shape.pop('(notifications)'):,} notifications over a week, "
        + ", ".join(
            f"{status} {count:,}" for status, count in shape.items() if status not in ("sizes", "(fcm attempts)")
        )
        + f" deliveries; {shape['(fcm attempts)']:,} FCM attempts. Sizes: {shape['sizes']}.",
        "",
        f"Median of {runs} runs, milliseconds:",
        "",
        "| period | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    lines += [f"| {period} | " + " | ".join(f"{timings[c]:.0f}" for c in columns) + " |" for period, timings in rows]
    lines += [
        "",
        f"Fan-out insert of 1,000 deliveries: {fanout[0]:.1f} ms with the console's delivery indexes, "
        f"{fanout[1]:.1f} ms without them.",
        f"Presence at {CONNECTIONS:,} connections: the processes' tallies {presence_ms[0]:.1f} ms, "
        f"`online_counts` (SCAN) {presence_ms[1]:.1f} ms.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "notifyhub.settings",
            "ENV_FILE": str(REPO / "bench" / "no-env-file"),
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DEBUG": "false",
            "ALLOWED_HOSTS": "testserver",
            "DATABASE_URL": options.database_url,
            "REDIS_URL": options.redis_url,
        }
    )
    import django

    django.setup()
    from bench import fixtures

    def progress(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    fixtures.ensure_database(options.database_url)
    fixtures.migrate_and_flush()
    shape = fill(progress)
    progress("timing the dashboard per period")
    rows = time_queries(options.runs)
    progress("timing a fan-out insert with and without the console's indexes")
    fanout = time_fanout_insert(max(options.runs, 11))
    progress("timing the presence reads")
    presence_ms = time_presence(options.runs)
    print()
    print(report(shape, rows, fanout, presence_ms, options.runs))


if __name__ == "__main__":
    main()
