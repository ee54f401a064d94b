"""The transitions of a Delivery that clients drive (sent, acknowledged, read) and its failure.

Each is one conditional UPDATE, so it is atomic and race-safe against the
retry sweep (which locks rows with SKIP LOCKED): whichever commits first wins,
and a late acknowledgement after a push is recorded without reopening the
delivery. The hub and the API both call these; the two can never disagree.
"""

import enum
import logging
import uuid
from collections.abc import Collection, Sequence
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.database import TRANSIENT_DATABASE_ERRORS
from notifications import layer, metrics, selectors
from notifications.errors import NotificationError
from notifications.models import UNREAD_DELIVERIES, Delivery, DeliveryAttempt
from notifications.sql import Columns, integer_array, uuid_array

logger = logging.getLogger(__name__)

ACKNOWLEDGED_OR_READ = (Delivery.Status.ACKNOWLEDGED, Delivery.Status.READ)

# A client that acknowledges or reads a delivery has it, whatever happened before: a delivery that was pushed
# or failed (no device, FCM refused it, it expired while the user was away) becomes acknowledged or read like
# any other. What happened stays visible where it belongs: `pushed_at` and `push_simulated` keep the push
# (the publisher's summary counts it), the attempt log keeps every send and FCM answer; the failure no longer
# holds, so its fields are cleared rather than left beside a status that contradicts them.
SUPERSEDED_FAILURE = {"failure_reason": "", "failed_at": None, "last_error": ""}


def delivery_not_found(notification_id) -> NotificationError:
    """The error for an id that is not one of the user's notifications (unknown, someone else's, malformed)."""
    return NotificationError(f"No notification {notification_id} for you.", code="not_found")


def _own_delivery(*, user_id: int, notification_id) -> QuerySet[Delivery]:
    parsed = selectors.parse_notification_id(notification_id)
    if parsed is None:
        raise delivery_not_found(notification_id)
    return Delivery.objects.filter(recipient_id=user_id, notification_id=parsed)


def delivery_acknowledge(*, user_id: int, notification_id: uuid.UUID | str) -> bool:
    """Record that a client of `user_id` has the notification. Idempotent.

    Returns True if this call acknowledged it, False if it already was.
    Unknown ids, and ids of other users' notifications, raise `not_found`.
    """
    [outcome] = deliveries_acknowledge_many([(user_id, notification_id)])
    if outcome is AckOutcome.NOT_FOUND:
        raise delivery_not_found(notification_id)
    return outcome is AckOutcome.ACKNOWLEDGED


class AckOutcome(enum.Enum):
    ACKNOWLEDGED = "acknowledged"  # this call acknowledged it
    ALREADY = "already"  # it already was (idempotent success)
    NOT_FOUND = "not_found"  # no such notification for this user (unknown, someone else's, malformed id)


@transaction.atomic
def deliveries_acknowledge_many(pairs: Sequence[tuple[int, object]]) -> list[AckOutcome]:
    """Acknowledge many (user_id, notification_id) pairs at once: one UPDATE, then one SELECT for the rest.

    The hub coalesces its clients' acks into one call of this (one
    statement instead of one transaction each). Returns one outcome per pair,
    in order; the same pair twice is ACKNOWLEDGED once, then ALREADY.
    """
    outcomes, ack_delays = _acknowledge_many(pairs)
    metrics.acks_on_commit(outcomes=[outcome.value for outcome in outcomes], ack_delays=ack_delays)
    return outcomes


def _acknowledge_many(pairs: Sequence[tuple[int, object]]) -> tuple[list[AckOutcome], list[float]]:
    """The outcome of each pair, and the seconds from publish to this ack of each delivery it acknowledged."""
    parsed = [(user_id, selectors.parse_notification_id(notification_id)) for user_id, notification_id in pairs]
    wanted = {(user_id, notification_id) for user_id, notification_id in parsed if notification_id is not None}
    if not wanted:
        return [AckOutcome.NOT_FOUND] * len(pairs), []
    # One statement text whatever the batch's size, its pairs as two array literals: psycopg binds parameters
    # on the client, and a statement of 500 pairs' `(%s, %s)` rows was split and quoted anew in Python for
    # every batch (a sixth of the web process's CPU under a burst of acks).
    user_ids = integer_array(user_id for user_id, _ in wanted)
    notification_ids = uuid_array(notification_id for _, notification_id in wanted)
    now = timezone.now()
    # Row values and RETURNING: the ORM's update() returns no rows.
    delivery = Columns(Delivery)
    sql = f"""
        UPDATE {delivery.table}
           SET {delivery.acknowledged_at} = %s,
               {delivery.status} = %s,
               {delivery.next_attempt_at} = NULL,
               {delivery.failure_reason} = '',
               {delivery.failed_at} = NULL,
               {delivery.last_error} = '',
               {delivery.updated_at} = %s
         WHERE {delivery.acknowledged_at} IS NULL AND {delivery.status} <> %s
           AND ({delivery.recipient}, {delivery.notification}) IN (
               SELECT * FROM unnest(%s::integer[], %s::uuid[]))
     RETURNING {delivery.recipient}, {delivery.notification}, {delivery.created_at}
    """  # noqa: S608 - identifiers come from model _meta; values are parameters
    with connection.cursor() as cursor:
        # A late ack (after a push or a failure) makes the delivery acknowledged too: see `SUPERSEDED_FAILURE`.
        # A resolved one stays resolved (final): its ack is answered as one already made.
        cursor.execute(
            sql, [now, Delivery.Status.ACKNOWLEDGED, now, Delivery.Status.RESOLVED, user_ids, notification_ids]
        )
        returned = cursor.fetchall()
    acknowledged = {(user_id, notification_id) for user_id, notification_id, _ in returned}
    # A delivery is written in its notification's publishing transaction: its created_at is the publish.
    ack_delays = [(now - created_at).total_seconds() for _, _, created_at in returned]
    rest = wanted - acknowledged
    existing: set[tuple[int, uuid.UUID | None]] = set()
    if rest:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {delivery.recipient}, {delivery.notification} FROM {delivery.table}"  # noqa: S608 (as above)
                f" WHERE ({delivery.recipient}, {delivery.notification}) IN ("
                f"SELECT * FROM unnest(%s::integer[], %s::uuid[]))",
                [integer_array(user_id for user_id, _ in rest), uuid_array(value for _, value in rest)],
            )
            existing = set(cursor.fetchall())
    outcomes = []
    for pair in parsed:
        if pair in acknowledged:
            outcomes.append(AckOutcome.ACKNOWLEDGED)
            acknowledged.discard(pair)
            existing.add(pair)
        elif pair in existing:
            outcomes.append(AckOutcome.ALREADY)
        else:
            outcomes.append(AckOutcome.NOT_FOUND)
    return outcomes, ack_delays


@transaction.atomic
def delivery_mark_read(*, user_id: int, notification_id: uuid.UUID | str, origin: str | None = None) -> bool:
    """Mark one notification read (which acknowledges it too) and sync the user's other connections.

    Returns True if it was unread. `origin` names the connection that asked,
    so it is not told what it already knows. A resolved one stays resolved (nothing left to read).
    """
    deliveries = _own_delivery(user_id=user_id, notification_id=notification_id)
    now = timezone.now()
    changed = deliveries.filter(UNREAD_DELIVERIES).update(
        read_at=now,
        acknowledged_at=Coalesce(F("acknowledged_at"), now),
        status=Delivery.Status.READ,
        next_attempt_at=None,
        **SUPERSEDED_FAILURE,
        updated_at=now,
    )
    if not changed:
        if not deliveries.exists():
            raise delivery_not_found(notification_id)
        return False
    metrics.deliveries_finished_on_commit(state=Delivery.Status.READ, count=changed)
    parsed = selectors.parse_notification_id(notification_id)
    layer.notifications_read_on_commit(
        user_id=user_id,
        notification_ids=[str(parsed)],
        unread_count=selectors.unread_count(user_id),
        origin=origin,
    )
    return True


@transaction.atomic
def deliveries_mark_all_read(*, user_id: int, origin: str | None = None) -> int:
    """Mark every unread notification of the user read (resolved ones stay resolved); returns how many were unread."""
    now = timezone.now()
    unread = Delivery.objects.filter(UNREAD_DELIVERIES, recipient_id=user_id)
    notification_ids = [str(value) for value in unread.values_list("notification_id", flat=True)]
    changed = Delivery.objects.filter(recipient_id=user_id, notification_id__in=notification_ids).update(
        read_at=Coalesce(F("read_at"), now),
        acknowledged_at=Coalesce(F("acknowledged_at"), now),
        status=Delivery.Status.READ,
        next_attempt_at=None,
        **SUPERSEDED_FAILURE,
        updated_at=now,
    )
    if changed:
        metrics.deliveries_finished_on_commit(state=Delivery.Status.READ, count=changed)
        layer.notifications_read_on_commit(
            user_id=user_id,
            notification_ids=notification_ids,
            unread_count=selectors.unread_count(user_id),
            origin=origin,
        )
    return changed


# However many sends came before, a client never gets longer than this to acknowledge one (the doubling stops here).
WEBSOCKET_RETRY_MAX_DELAY = timedelta(minutes=10)


def websocket_retry_delay(sends: int) -> timedelta:
    """How long a client has to acknowledge the `sends`-th WebSocket send: the ack timeout, doubled per resend,
    at most `WEBSOCKET_RETRY_MAX_DELAY`."""
    doubled = settings.NOTIFY_ACK_TIMEOUT * 2 ** (min(max(sends, 1), 32) - 1)
    return min(timedelta(seconds=doubled), WEBSOCKET_RETRY_MAX_DELAY)


def websocket_fallback_bound() -> timedelta:
    """The longest a delivery sent to a connected client that never acknowledges it waits for its push:
    every WebSocket send's wait, added up (replays never add to it: see `deliveries_mark_sent`)."""
    return sum((websocket_retry_delay(sends) for sends in range(1, settings.NOTIFY_MAX_WS_ATTEMPTS + 1)), timedelta())


def deliveries_mark_sent(*, notification_ids: Collection[uuid.UUID | str], recipient_ids: Collection[int]) -> int:
    """Count a WebSocket send to live connections (dispatch, or a user's replay on connect); returns how many
    deliveries it counted for. One of the two lists must hold a single id (the rows are their cross product):
    one notification to several recipients, or several notifications to one user.

    Only a send the fallback schedule counts changes a delivery: one still in its WebSocket phase (open, never
    pushed) with fewer than NOTIFY_MAX_WS_ATTEMPTS sends. A `pending` one becomes `sent` and its ack clock starts;
    one already `sent` counts one more send, and its next step (resend or push) may come sooner, never later.
    So a client that reconnects over and over (each connect replays what it has not acknowledged) brings its
    push forward instead of putting it off, and a delivery's attempt log holds at most NOTIFY_MAX_WS_ATTEMPTS
    WebSocket sends however often it is replayed. One statement updates the rows and logs their attempts,
    however many.
    """
    if not notification_ids or not recipient_ids:
        return 0
    if len(notification_ids) > 1 and len(recipient_ids) > 1:
        raise ValueError("one of notification_ids and recipient_ids must hold a single id")
    delivery = Columns(Delivery)
    where = (
        f"{delivery.notification} = ANY(%s) AND {delivery.recipient} = ANY(%s) AND {delivery.status} = ANY(%s)"
        f" AND {delivery.push_attempts} = 0 AND {delivery.attempts} < %s"
    )
    params = [
        list(notification_ids),
        list(recipient_ids),
        list(Delivery.OPEN_STATUSES),
        settings.NOTIFY_MAX_WS_ATTEMPTS,
    ]
    return _record_websocket_sends(where=where, where_params=params, keep_earlier_deadline=True)


def deliveries_mark_resent(*, delivery_ids: Collection[int]) -> int:
    """Record the retry sweep's WebSocket resend of these deliveries (it chose them); the wait starts afresh."""
    if not delivery_ids:
        return 0
    where = f"{Columns(Delivery).id} = ANY(%s)"
    return _record_websocket_sends(where=where, where_params=[list(delivery_ids)], keep_earlier_deadline=False)


def deliveries_log_first_sends(*, notification_id: uuid.UUID | str, recipient_ids: Collection[int]) -> None:
    """Log the first WebSocket send of the deliveries publishing wrote `sent` (no state change: the rows already
    count it), once dispatch has made it. One statement, however many recipients.

    Logged here, after the commit and the send, rather than in the publish's own statement: 1,000 attempt
    rows and their foreign-key checks held up the commit, and with it every member of a department, by ~10 ms.
    A connection lost on the way (PostgreSQL restarted) runs it once more on a new one, logging only the
    sends not logged yet (the statement may have committed before the answer was lost); lost twice, the log
    rows are left out with a warning. So is a process that dies between the commit and this statement: the
    rows' `attempts` still count the send, which is what the fallback schedule reads.
    """
    if not recipient_ids:
        return
    try:
        _first_sends_log(notification_id, recipient_ids, unlogged_only=False)
    except TRANSIENT_DATABASE_ERRORS as error:
        logger.warning("first sends of %s: the database failed (%s); once more", notification_id, error)
        connection.close()  # back to the pool, which drops it if broken
        try:
            _first_sends_log(notification_id, recipient_ids, unlogged_only=True)
        except TRANSIENT_DATABASE_ERRORS as again:
            connection.close()
            logger.warning("first sends of %s left unlogged: the database failed again (%s)", notification_id, again)


def _first_sends_log(notification_id: uuid.UUID | str, recipient_ids: Collection[int], *, unlogged_only: bool) -> None:
    delivery, attempt = Columns(Delivery), Columns(DeliveryAttempt)
    written_sent = (
        f"SELECT d.{delivery.id} FROM {delivery.table} d"  # noqa: S608 (identifiers from _meta)
        f" WHERE d.{delivery.notification} = %s AND d.{delivery.recipient} = ANY(%s::integer[])"
    )
    if unlogged_only:
        written_sent += (
            f" AND NOT EXISTS (SELECT 1 FROM {attempt.table} a WHERE a.{attempt.delivery} = d.{delivery.id}"  # noqa: S608
            f" AND a.{attempt.channel} = %s AND a.{attempt.outcome} = %s)"
        )
    outcome = DeliveryAttempt.Outcome.SENT
    params = [
        *websocket_attempt_values(outcome=outcome, now=timezone.now()),
        notification_id,
        integer_array(recipient_ids),
        *([DeliveryAttempt.Channel.WEBSOCKET, outcome] if unlogged_only else []),
    ]
    with connection.cursor() as cursor:
        cursor.execute(websocket_attempts_insert_sql(written_sent), params)


def _record_websocket_sends(*, where: str, where_params: list, keep_earlier_deadline: bool) -> int:
    """One statement: the WebSocket send of every delivery `where` selects, and its attempt log row.

    The n-th send waits `websocket_retry_delay(n)` (`attempts` on the right of SET is the value before this
    send). With `keep_earlier_deadline`, a `sent` delivery keeps its next step if that comes sooner.
    """
    delivery = Columns(Delivery)
    wait = f"clock.now + LEAST(clock.ack * power(2, LEAST({delivery.attempts}, 32)), clock.most) * interval '1 second'"
    next_attempt_at = wait
    if keep_earlier_deadline:
        next_attempt_at = (
            f"CASE WHEN {delivery.status} = clock.sent THEN LEAST({delivery.next_attempt_at}, {wait}) ELSE {wait} END"
        )
    sql = f"""
        WITH sent AS (
            UPDATE {delivery.table}
               SET {delivery.status} = clock.sent,
                   {delivery.attempts} = {delivery.attempts} + 1,
                   {delivery.sent_at} = COALESCE({delivery.sent_at}, clock.now),
                   {delivery.next_attempt_at} = {next_attempt_at},
                   {delivery.updated_at} = clock.now
              FROM (SELECT %s::timestamptz, %s::double precision, %s::double precision, %s::varchar)
                   AS clock(now, ack, most, sent)
             WHERE {where}
         RETURNING {delivery.id}
        )
        {websocket_attempts_insert_sql("SELECT id FROM sent")}
    """  # noqa: S608 - identifiers come from model _meta; values are parameters
    now = timezone.now()
    params = [
        now,
        float(settings.NOTIFY_ACK_TIMEOUT),
        WEBSOCKET_RETRY_MAX_DELAY.total_seconds(),
        Delivery.Status.SENT,
        *where_params,
        *websocket_attempt_values(outcome=DeliveryAttempt.Outcome.SENT, now=now),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def deliveries_log_offline(*, delivery_ids: Collection[int]) -> None:
    """Log (no state change) that these deliveries' recipients had no live connection when a WebSocket send was
    due, so they get a push."""
    _log_websocket_attempts(
        delivery_ids=delivery_ids, outcome=DeliveryAttempt.Outcome.NO_CONNECTION, now=timezone.now()
    )


def deliveries_log_offline_pending(*, notification_id: uuid.UUID | str, recipient_ids: Collection[int]) -> list[int]:
    """Log (no state change) `no_connection` for these recipients' pending deliveries of a notification; returns
    those deliveries' ids.

    One statement selects the deliveries and logs their attempts, however many.
    """
    if not recipient_ids:
        return []
    delivery = Columns(Delivery)
    now = timezone.now()
    pending = (
        f"SELECT {delivery.id} FROM {delivery.table}"  # noqa: S608 (identifiers from _meta)
        f" WHERE {delivery.notification} = %s AND {delivery.recipient} = ANY(%s) AND {delivery.status} = %s"
    )
    sql = f"{websocket_attempts_insert_sql(pending)} RETURNING {Columns(DeliveryAttempt).delivery}"
    params = [
        *websocket_attempt_values(outcome=DeliveryAttempt.Outcome.NO_CONNECTION, now=now),
        notification_id,
        list(recipient_ids),
        Delivery.Status.PENDING,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [delivery_id for (delivery_id,) in cursor.fetchall()]


def websocket_attempts_insert_sql(delivery_ids_select: str) -> str:
    """INSERT of one WebSocket DeliveryAttempt per delivery id the SELECT yields (its placeholders come last)."""
    attempt = Columns(DeliveryAttempt)
    return (
        f"INSERT INTO {attempt.table} ({attempt.delivery}, {attempt.channel}, {attempt.outcome},"  # noqa: S608 (identifiers from _meta)
        f" {attempt.device}, {attempt.error}, {attempt.created_at})"
        f" SELECT ids.id, %s, %s, NULL, '', %s FROM ({delivery_ids_select}) AS ids(id)"
    )


def websocket_attempt_values(*, outcome: str, now) -> list:
    return [DeliveryAttempt.Channel.WEBSOCKET, outcome, now]


def _log_websocket_attempts(*, delivery_ids: Collection[int], outcome: str, now) -> None:
    DeliveryAttempt.objects.bulk_create(
        [
            DeliveryAttempt(
                delivery_id=delivery_id, channel=DeliveryAttempt.Channel.WEBSOCKET, outcome=outcome, created_at=now
            )
            for delivery_id in delivery_ids
        ],
        batch_size=1_000,
    )


def deliveries_fail(*, delivery_ids: Collection[int], reason: str, error: str = "") -> int:
    """Close open deliveries as failed with `reason` (a Delivery.FailureReason); final ones are left alone."""
    now = timezone.now()
    failed = Delivery.objects.filter(id__in=delivery_ids, status__in=Delivery.OPEN_STATUSES).update(
        status=Delivery.Status.FAILED,
        failure_reason=reason,
        last_error=error,
        failed_at=now,
        next_attempt_at=None,
        push_claimed_by="",
        push_claimed_until=None,
        updated_at=now,
    )
    metrics.deliveries_finished_on_commit(state=Delivery.Status.FAILED, reason=reason, count=failed)
    return failed


def deliveries_postpone(*, notification_id: uuid.UUID | str, recipient_ids: Collection[int], seconds: float) -> int:
    """Hand these recipients' pending deliveries of a notification to the sweep `seconds` from now, no sooner."""
    return Delivery.objects.filter(
        notification_id=notification_id, recipient_id__in=recipient_ids, status=Delivery.Status.PENDING
    ).update(next_attempt_at=timezone.now() + timedelta(seconds=seconds))


def deliveries_due_now(*, notification_id: uuid.UUID) -> int:
    """Hand a notification's open deliveries to the next sweep (its dispatch after commit was lost)."""
    return Delivery.objects.filter(notification_id=notification_id, status__in=Delivery.OPEN_STATUSES).update(
        next_attempt_at=timezone.now()
    )


def deliveries_retry_now(*, delivery_ids: Collection[int]) -> int:
    """Hand open deliveries to the next sweep (admin "retry now"); final ones are left alone."""
    return Delivery.objects.filter(id__in=delivery_ids, status__in=Delivery.OPEN_STATUSES).update(
        next_attempt_at=timezone.now()
    )
