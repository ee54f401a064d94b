"""The dashboard's aggregates on known data, and the live presence numbers per protocol and process (real Redis)."""

from datetime import UTC, datetime, timedelta

import pytest

from notifications import presence
from notifications.console import stats
from notifications.console.stats import Period
from notifications.models import Delivery, DeliveryAttempt, Notification
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 5, 14, 7, 30, tzinfo=UTC)
Status = Delivery.Status
Reason = Delivery.FailureReason


def published(at: datetime, title: str = "Approve") -> Notification:
    return Notification.objects.create(event="NewTask", title=title, created_at=at)


def delivery(notification: Notification, status: str, *, after: dict | None = None, **fields) -> Delivery:
    """A delivery of `notification`, its times given as seconds after the publish (`after={"acknowledged_at": 2}`)."""
    times = {name: notification.created_at + timedelta(seconds=s) for name, s in (after or {}).items()}
    return Delivery.objects.create(
        notification=notification,
        recipient=UserFactory(),
        status=status,
        created_at=notification.created_at,
        **times,
        **fields,
    )


@pytest.fixture
def last_hour():
    """Within the last hour: two notifications, deliveries in every state; one notification a day ago."""
    first = published(NOW - timedelta(minutes=50))
    second = published(NOW - timedelta(minutes=3))
    for seconds in (1, 2, 3, 4):
        delivery(first, Status.ACKNOWLEDGED, after={"acknowledged_at": seconds})
    delivery(first, Status.READ, after={"acknowledged_at": 5, "read_at": 60})
    delivery(first, Status.PUSHED, after={"pushed_at": 30}, push_simulated=False)
    delivery(first, Status.PUSHED, after={"pushed_at": 90}, push_simulated=True)
    delivery(first, Status.FAILED, after={"failed_at": 120}, failure_reason=Reason.NO_DEVICES)
    delivery(second, Status.FAILED, after={"failed_at": 10}, failure_reason=Reason.PUSH_REJECTED)
    delivery(second, Status.FAILED, after={"failed_at": 20}, failure_reason=Reason.NO_DEVICES)
    delivery(second, Status.SENT, next_attempt_at=NOW + timedelta(seconds=30))
    delivery(second, Status.PENDING, next_attempt_at=NOW - timedelta(minutes=5))  # overdue: the sweep is behind
    delivery(second, Status.PENDING, next_attempt_at=NOW - timedelta(seconds=30))  # due, not yet overdue
    yesterday = published(NOW - timedelta(hours=23))
    delivery(yesterday, Status.FAILED, after={"failed_at": 5}, failure_reason=Reason.EXPIRED)
    delivery(yesterday, Status.ACKNOWLEDGED, after={"acknowledged_at": 100})
    return first, second, yesterday


def test_counts_deliveries_by_state_and_failures_by_reason(last_hour):
    hour = stats.period_stats(Period.HOUR, now=NOW)
    assert hour.published == 2
    assert hour.deliveries == stats.DeliveryCounts(
        total=13,
        pending=2,
        sent=1,
        acknowledged=4,
        read=1,
        pushed_real=1,
        pushed_simulated=1,
        failed=3,
        failed_by_reason={"no_devices": 2, "push_rejected": 1},
    )
    day = stats.period_stats(Period.DAY, now=NOW)
    assert (day.published, day.deliveries.total, day.deliveries.failed_by_reason["expired"]) == (3, 15, 1)


def test_percentiles_from_publish_to_ack_and_to_push(last_hour):
    hour = stats.period_stats(Period.HOUR, now=NOW)
    # Acks 1, 2, 3, 4, 5 seconds after their publish (percentile_cont interpolates).
    assert hour.to_ack.p50 == pytest.approx(3.0)
    assert hour.to_ack.p95 == pytest.approx(4.8)
    assert hour.to_ack.p99 == pytest.approx(4.96)
    assert hour.to_push.p50 == pytest.approx(60.0)  # 30 and 90 seconds
    assert stats.period_stats(Period.HOUR, now=NOW + timedelta(hours=2)).to_ack == stats.Percentiles()


def test_period_boundaries_count_the_start_and_leave_out_now():
    published(NOW - timedelta(hours=1))  # exactly at the start: in
    published(NOW - timedelta(hours=1, microseconds=1))  # just before: out
    published(NOW)  # at `now`: the next refresh's
    assert stats.period_stats(Period.HOUR, now=NOW).published == 1


def test_backlog_counts_open_deliveries_and_the_sweeps_lag(last_hour):
    backlog = stats.backlog(NOW)
    assert (backlog.pending, backlog.sent, backlog.overdue) == (2, 1, 1)
    assert backlog.oldest_overdue_at == NOW - timedelta(minutes=5)
    assert backlog.sweep_lag_seconds(NOW) == 300


def test_push_outcomes_count_fcm_attempts_in_the_period(last_hour):
    first = last_hour[0].deliveries.first()
    for outcome, minutes_ago in [("accepted", 5), ("simulated", 5), ("retry", 10), ("retry", 70), ("rejected", 2)]:
        DeliveryAttempt.objects.create(
            delivery=first, channel="fcm", outcome=outcome, created_at=NOW - timedelta(minutes=minutes_ago)
        )
    DeliveryAttempt.objects.create(delivery=first, channel="ws", outcome="sent", created_at=NOW - timedelta(minutes=1))
    assert stats.push_outcomes(NOW - timedelta(hours=1), NOW) == {
        "accepted": 1,
        "simulated": 1,
        "retry": 1,
        "rejected": 1,
        "device_gone": 0,
    }


def test_series_has_one_bucket_per_five_minutes_with_empty_ones(last_hour):
    points = stats.period_stats(Period.HOUR, now=NOW).series
    # 13:07:30 → 14:07:30: buckets 13:05, 13:10, … 14:05.
    assert len(points) == 13
    assert points[0].start == datetime(2026, 12, 5, 13, 5, tzinfo=UTC)
    assert points[-1].start == datetime(2026, 12, 5, 14, 5, tzinfo=UTC)
    by_start = {point.start.strftime("%H:%M"): point for point in points}
    assert (by_start["13:15"].published, by_start["13:15"].delivered, by_start["13:15"].failed) == (1, 7, 1)
    assert (by_start["14:00"].published, by_start["14:00"].delivered, by_start["14:00"].failed) == (1, 0, 2)
    assert sum(point.published for point in points) == 2
    assert by_start["13:30"].published == 0


def test_series_buckets_per_period():
    assert len(stats.period_stats(Period.DAY, now=NOW).series) == 25  # hours 14:00 yesterday … 14:00 today
    week = stats.period_stats(Period.WEEK, now=NOW).series
    assert week[1].start - week[0].start == timedelta(hours=6)
    assert len(week) == 29


def test_recent_failures_newest_first_within_the_period(last_hour):
    failures = stats.recent_failures(NOW - timedelta(hours=1))
    assert [failure.failure_reason for failure in failures] == ["no_devices", "push_rejected", "no_devices"]
    assert failures[0].failed_at == last_hour[1].created_at + timedelta(seconds=20)


def test_recent_failures_leave_in_app_only_deliveries_out():
    note = published(NOW - timedelta(minutes=5), title="Task delegated")
    delivery(note, Status.FAILED, after={"failed_at": 30}, failure_reason=Reason.IN_APP_ONLY)
    fault = delivery(note, Status.FAILED, after={"failed_at": 10}, failure_reason=Reason.NO_DEVICES)

    assert stats.recent_failures(NOW - timedelta(hours=1)) == [fault]


def test_period_from_key():
    assert Period.from_key("week") is Period.WEEK
    assert Period.from_key("month") is None
    assert Period.from_key(None) is None


# --- Live presence numbers ------------------------------------------------------------------------------------


def test_connection_ids_name_their_process_protocol_and_opening_time():
    connection_id = presence.new_connection_id("signalr")
    parsed = presence.parse_connection_id(connection_id)
    assert parsed.process_id == presence.PROCESS_ID
    assert parsed.protocol == "signalr"
    assert abs((parsed.opened_at - datetime.now(UTC)).total_seconds()) < 5
    old = presence.parse_connection_id("hub~0123456789abcdef~5f2c")  # an older release's
    assert (old.process_id, old.protocol, old.opened_at) == ("0123456789abcdef", None, None)
    assert presence.parse_connection_id("c1").process_id is None


@pytest.fixture
def tallied_liveness(redis_client, monkeypatch):
    """This process's liveness tick, publishing a tally of 2 native and 1 SignalR connections of 2 users."""
    monkeypatch.setattr(presence.process_liveness, "tally", lambda: {"native": 2, "signalr": 1, "users": 2})
    presence.process_liveness.forget_client()
    presence.process_liveness.tick()
    yield presence.process_liveness
    presence.process_liveness.forget_client()


def test_web_processes_read_each_process_tally_per_protocol(tallied_liveness):
    [process] = presence.web_processes()
    assert process.process_id == presence.PROCESS_ID
    assert process.connections == {"native": 2, "signalr": 1}
    assert (process.connection_count, process.users, process.behind_seconds) == (3, 2, 0.0)


def test_a_process_whose_liveness_ended_is_not_listed(tallied_liveness, redis_client):
    redis_client.zadd(presence.PROCESSES_KEY, {"deadbeefdeadbeef": 1})  # its liveness ended in 1970
    assert [process.process_id for process in presence.web_processes()] == [presence.PROCESS_ID]


def test_online_connection_ids_per_user_with_protocols(redis_client):
    import asyncio

    native, signalr = presence.new_connection_id("native"), presence.new_connection_id("signalr")
    asyncio.run(presence.connection_alive(41, native))
    asyncio.run(presence.connection_alive(41, signalr))
    asyncio.run(presence.connection_alive(42, presence.new_connection_id("native")))
    online = presence.online_connection_ids()
    assert sorted(online) == [41, 42]
    assert sorted(presence.parse_connection_id(c).protocol for c in online[41]) == ["native", "signalr"]
    asyncio.run(presence.connection_gone(42, online[42][0]))
    assert sorted(presence.online_connection_ids()) == [41]


def test_the_process_tally_counts_connections_per_protocol_and_distinct_users():
    from types import SimpleNamespace

    from notifications.hub.heartbeat import ProcessTally

    tally = ProcessTally()
    sessions = [
        SimpleNamespace(connection_id=presence.new_connection_id(protocol), user_id=user_id)
        for protocol, user_id in [("native", 1), ("native", 1), ("signalr", 2)]
    ]
    for session in sessions:
        tally.add(session)
    assert tally.counts() == {"native": 2, "signalr": 1, "users": 2}
    tally.remove(sessions[2])
    assert tally.counts() == {"native": 2, "users": 1}


def test_the_weeks_percentiles_come_from_every_tenth_delivery():
    notification = published(NOW - timedelta(days=2))
    for seconds in range(1, 101):
        delivery(notification, Status.ACKNOWLEDGED, after={"acknowledged_at": seconds})
    week = stats.period_stats(Period.WEEK, now=NOW)
    assert week.deliveries.acknowledged == 100
    assert 40 <= week.to_ack.p50 <= 60  # ten of the hundred, spread over the range
