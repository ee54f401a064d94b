"""Why was a user notified, or not? The delivery ledger told in sentences an operator understands.

A selector: it only reads. Its sources are the Delivery row (status, times, failure), its attempt log (every
WebSocket send and FCM answer), the recipient's devices, and presence now (live connections, last seen). Each
`Explanation` has a one-line `summary` (the answer), a short `verdict` (a machine name) and `details`
(sentences in time order, then the next step for an open delivery). Times read as `console.times` writes them.

Every path of the delivery state machine (models.py, services/deliveries.py, sweep.py, pushes.py, push.py)
has its sentence; tests/notifications/test_explain.py drives each through the real services.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby

import redis
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import prefetch_related_objects
from django.utils import timezone

from core.durations import duration
from notifications import presence
from notifications.console.times import time_of_day
from notifications.models import Delivery, DeliveryAttempt, Device, EventPreference, Notification
from notifications.preferences import push_settings_for
from notifications.reserved import TASK_ESCALATED_EVENT, TASK_REMINDER_EVENT
from notifications.services.deliveries import websocket_retry_delay
from notifications.services.pushes import PUSH_RETRY_MAX_DELAY
from workflow.models import DepartmentMembership

Status = Delivery.Status
Reason = Delivery.FailureReason
Outcome = DeliveryAttempt.Outcome

# An open delivery whose next step is this late has not been taken by the retry sweep: something is wrong.
OVERDUE_AFTER = timedelta(seconds=30)


@dataclass(frozen=True)
class Explanation:
    verdict: str  # read, delivered, pushed, pushed_simulated, sending, pushing, waiting, held, failed, resolved, ...
    summary: str
    details: list[str] = field(default_factory=list)

    @property
    def verdict_label(self) -> str:
        return self.verdict.replace("_", " ")

    def as_dict(self) -> dict:
        return {"verdict": self.verdict, "summary": self.summary, "details": list(self.details)}


@dataclass(frozen=True)
class PresenceNow:
    """A user's presence as the explanation states it."""

    connections: int = 0
    last_seen: datetime | None = None
    incomplete_for: float = 0.0  # seconds until the registry is complete again (after a Redis restart)
    known: bool = True  # False: Redis did not answer

    def phrase(self, now: datetime) -> str:
        if not self.known:
            return "presence unknown (Redis did not answer)"
        if self.connections:
            return f"online now with {self.connections} live connection{_plural(self.connections)}"
        if self.incomplete_for > 0:
            return (
                "online or not is uncertain: the presence registry is being rebuilt after a Redis restart "
                f"(complete in {self.incomplete_for:.0f} s)"
            )
        if self.last_seen is not None:
            return f"offline since {time_of_day(self.last_seen, today=now)} on every connection"
        return "offline (last seen: unknown)"


def presence_of(user_ids: Iterable[int]) -> dict[int, PresenceNow]:
    """Presence now of each user: one registry lookup and one last-seen read for all of them."""
    user_ids = sorted(set(user_ids))
    if not user_ids:
        return {}
    try:
        found = presence.lookup(user_ids)
        seen = presence.last_seen(user_ids)
    except redis.RedisError:
        return dict.fromkeys(user_ids, PresenceNow(known=False))
    return {
        user_id: PresenceNow(
            connections=found.connection_counts.get(user_id, 0),
            last_seen=seen.get(user_id),
            incomplete_for=found.incomplete_for,
        )
        for user_id in user_ids
    }


def explain_delivery(delivery: Delivery, *, now: datetime | None = None) -> Explanation:
    [explanation] = explain_deliveries([delivery], now=now)
    return explanation


def explain_deliveries(deliveries: Iterable[Delivery], *, now: datetime | None = None) -> list[Explanation]:
    """One explanation per delivery, in order. A constant number of queries (the deliveries' notifications and
    recipients unless loaded, their attempt logs unless prefetched as `attempt_log`, the recipients' devices)
    and one presence lookup, however many deliveries."""
    deliveries = list(deliveries)
    if not deliveries:
        return []
    now = now or timezone.now()
    prefetch_related_objects(deliveries, "notification", "recipient")
    attempts = _attempts_by_delivery(deliveries)
    recipient_ids = {delivery.recipient_id for delivery in deliveries}
    devices: dict[int, list[Device]] = defaultdict(list)
    for device in Device.objects.filter(user_id__in=recipient_ids).order_by("pk"):
        devices[device.user_id].append(device)
    present = presence_of(recipient_ids)
    return [
        _Ledger(
            delivery=delivery,
            attempts=attempts[delivery.pk],
            devices=devices[delivery.recipient_id],
            presence=present[delivery.recipient_id],
            now=now,
        ).explain()
        for delivery in deliveries
    ]


def _attempts_by_delivery(deliveries: Sequence[Delivery]) -> dict[int, list[DeliveryAttempt]]:
    if all("attempt_log" in getattr(delivery, "_prefetched_objects_cache", {}) for delivery in deliveries):
        return {delivery.pk: list(delivery.attempt_log.all()) for delivery in deliveries}
    found: dict[int, list[DeliveryAttempt]] = defaultdict(list)
    for attempt in DeliveryAttempt.objects.filter(delivery__in=[delivery.pk for delivery in deliveries]).select_related(
        "device"
    ):
        found[attempt.delivery_id].append(attempt)
    return found


def person(user: AbstractBaseUser) -> str:
    """'Bob Smith (bob)', or 'bob' when the account has no name."""
    full_name = user.get_full_name() if hasattr(user, "get_full_name") else ""
    username = user.get_username()
    return f"{full_name} ({username})" if full_name else username


def device_name(device: Device | None) -> str:
    if device is None:
        return "a device since deleted"
    return f"{device.get_platform_display()} device {device.pk}"


def _follow_up_reason(notification: Notification) -> str:
    """Why the workflow sent this reminder or escalation (workflow/services/escalation.py); empty for others.

    The event names are reserved: only the workflow publishes them, so their data is its own."""
    data, event = notification.data, notification.event
    waited = data.get("waitedSeconds")
    if notification.published_by_id is not None or not isinstance(waited, int):
        return ""
    how_long = duration(timedelta(seconds=waited))
    if event == TASK_REMINDER_EVENT:
        return f"The workflow's reminder: task {data.get('taskId')} had waited {how_long} for their decision."
    if event == TASK_ESCALATED_EVENT:
        return (
            f"The workflow's escalation: {data.get('approver')} had left task {data.get('taskId')} undecided for "
            f"{how_long}; they are the escalation contact of department {data.get('department')}."
        )
    return ""


def _plural(count: int) -> str:
    return "" if count == 1 else "s"


def _error_code(error: str) -> str:
    """'UNREGISTERED' of 'UNREGISTERED: Requested entity was not found.'"""
    return error.split(":", 1)[0].strip() if error else ""


@dataclass(frozen=True)
class _PushRound:
    number: int
    at: datetime
    attempts: list[DeliveryAttempt]


class _Ledger:
    """One delivery's rows, read as a story."""

    def __init__(
        self,
        *,
        delivery: Delivery,
        attempts: list[DeliveryAttempt],
        devices: list[Device],
        presence: PresenceNow,
        now: datetime,
    ) -> None:
        self.delivery = delivery
        self.notification: Notification = delivery.notification
        self.who = person(delivery.recipient)
        self.devices = devices
        self.presence = presence
        self.now = now
        self.sends = [
            a for a in attempts if a.channel == DeliveryAttempt.Channel.WEBSOCKET and a.outcome == Outcome.SENT
        ]
        self.offline_at = [
            a.created_at
            for a in attempts
            if a.channel == DeliveryAttempt.Channel.WEBSOCKET and a.outcome == Outcome.NO_CONNECTION
        ]
        fcm = [a for a in attempts if a.channel == DeliveryAttempt.Channel.FCM and a.outcome != Outcome.DEFERRED]
        # A push held for quiet hours is no round (services/pushes.py `_defer`): told on its own.
        self.deferrals = [
            a for a in attempts if a.channel == DeliveryAttempt.Channel.FCM and a.outcome == Outcome.DEFERRED
        ]
        # One push round writes all its results with one timestamp (services/pushes.py `_record`).
        self.rounds = [
            _PushRound(number, at, list(group))
            for number, (at, group) in enumerate(groupby(fcm, key=lambda a: a.created_at), start=1)
        ]

    # --- Words ---------------------------------------------------------------------------------------------
    def at(self, moment: datetime) -> str:
        return time_of_day(moment, today=self.now)

    def since_publish(self, moment: datetime) -> str:
        return f"{duration(moment - self.delivery.created_at)} after it was published"

    # --- The story -----------------------------------------------------------------------------------------
    def explain(self) -> Explanation:
        verdict, summary, next_steps = self._answer()
        return Explanation(verdict=verdict, summary=f"{self.who} {summary}", details=self._history() + next_steps)

    def _history(self) -> list[str]:
        """What happened, in time order."""
        delivery, notification = self.delivery, self.notification
        events: list[tuple[datetime, str]] = []
        expiry = f"; it expires at {self.at(notification.expires_at)}" if notification.expires_at else ""
        events.append(
            (
                delivery.created_at,
                f"Published at {self.at(delivery.created_at)}: “{notification.title}” "
                f"(event {notification.event}, {notification.priority} priority{expiry}).",
            )
        )
        if follow_up := _follow_up_reason(notification):
            events.append((delivery.created_at, follow_up))
        for number, send in enumerate(self.sends, start=1):
            how = "they were online" if number == 1 else "sent again"
            events.append(
                (
                    send.created_at,
                    f"Sent live over WebSocket at {self.at(send.created_at)} ({how}; send {number} of "
                    f"at most {settings.NOTIFY_MAX_WS_ATTEMPTS}).",
                )
            )
        for moment in self.offline_at:
            events.append(
                (moment, f"No live connection at {self.at(moment)}: offline, so it went to the push fallback.")
            )
        for held in self.deferrals:
            events.append((held.created_at, f"Push held at {self.at(held.created_at)}: {held.error}"))
        for push_round in self.rounds:
            fates = "; ".join(self._fate(attempt) for attempt in push_round.attempts)
            events.append((push_round.at, f"Push round {push_round.number} at {self.at(push_round.at)}: {fates}."))
        if delivery.acknowledged_at and delivery.acknowledged_at != delivery.read_at:
            events.append(
                (
                    delivery.acknowledged_at,
                    f"Acknowledged by a client at {self.at(delivery.acknowledged_at)}, "
                    f"{self.since_publish(delivery.acknowledged_at)}.",
                )
            )
        if delivery.read_at:
            events.append(
                (delivery.read_at, f"Read at {self.at(delivery.read_at)}, {self.since_publish(delivery.read_at)}.")
            )
        if delivery.failed_at:
            events.append((delivery.failed_at, f"Failed at {self.at(delivery.failed_at)}: {self._failure()}."))
        if delivery.resolved_at:
            events.append(
                (
                    delivery.resolved_at,
                    f"Resolved at {self.at(delivery.resolved_at)}: {self._resolution().lower()}; nothing more is sent "
                    "or pushed.",
                )
            )
        settled_by_client = delivery.status in (Status.ACKNOWLEDGED, Status.READ)
        if settled_by_client and (superseded := self._superseded_failure()):
            events.append((delivery.acknowledged_at or delivery.read_at or self.now, superseded))
        events.sort(key=lambda event: event[0])  # stable: same-second events keep their order
        return [sentence for _, sentence in events]

    def _fate(self, attempt: DeliveryAttempt) -> str:
        device = device_name(attempt.device)
        if attempt.outcome == Outcome.ACCEPTED:
            return f"FCM accepted it for {device}"
        if attempt.outcome == Outcome.SIMULATED:
            return f"simulated for {device} by the log push backend (recorded, but nothing reached a phone)"
        if attempt.outcome == Outcome.REJECTED:
            return f"FCM rejected it for {device} ({attempt.error})"
        if attempt.outcome == Outcome.DEVICE_GONE:
            return f"{device}'s token is dead ({_error_code(attempt.error)}): the device was deactivated"
        if attempt.outcome == Outcome.SUPERSEDED:
            return f"FCM accepted it for {device} while it was being resolved (its replacement followed)"
        if attempt.outcome == Outcome.REPLACED:
            return f"replaced on {device} by the push saying it was resolved"
        return f"temporary error for {device} ({attempt.error}), to be retried"

    def _answer(self) -> tuple[str, str, list[str]]:
        """(verdict, the summary after the user's name, the next steps of an open delivery)."""
        delivery = self.delivery
        if delivery.status == Status.READ:
            moment = delivery.read_at or self.now
            return "read", f"got it: read at {self.at(moment)}, {self.since_publish(moment)}{self._after_push()}.", []
        if delivery.status == Status.ACKNOWLEDGED:
            moment = delivery.acknowledged_at or self.now
            return (
                "delivered",
                f"got it: acknowledged by a client at {self.at(moment)}, {self.since_publish(moment)}"
                f"{self._after_push()}.",
                [],
            )
        if delivery.status == Status.PUSHED:
            return self._pushed()
        if delivery.status == Status.FAILED:
            return self._failed()
        if delivery.status == Status.RESOLVED:
            resolved_at = self.at(delivery.resolved_at or self.now)
            after_push = self._after_push().strip(" ()")
            return (
                "resolved",
                f"needs it no more: it was resolved at {resolved_at} before they read it"
                f"{', ' + after_push if after_push else ''} ({self._resolution().lower()}).",
                [],
            )
        return self._open()

    def _resolution(self) -> str:
        resolution = self.notification.resolution
        Resolution = Notification.Resolution
        return Resolution(resolution).label if resolution in Resolution.values else "the work it was about is done"

    def _after_push(self) -> str:
        if self.delivery.pushed_at is None:
            return ""
        kind = "a simulated push (log backend)" if self.delivery.push_simulated else "a push"
        return f" (after {kind} at {self.at(self.delivery.pushed_at)})"

    def _superseded_failure(self) -> str:
        """A late ack or read settles a delivery whose push had failed or never reached a device: say so."""
        if self.delivery.pushed_at is not None:
            return ""
        if self.rounds:
            return (
                "No push had reached a device before that; the acknowledgement supersedes that failure "
                "(a client has it)."
            )
        if self.offline_at:
            return (
                "It had gone to the push fallback without reaching a device; the acknowledgement supersedes "
                "any failure recorded there (a client has it)."
            )
        return ""

    # --- Pushed -----------------------------------------------------------------------------------------------
    def _device_fates(self) -> tuple[list[DeliveryAttempt], list[DeliveryAttempt]]:
        """The last answer per pushed device, split into (delivered, the others)."""
        last: dict[object, DeliveryAttempt] = {}
        for push_round in self.rounds:
            for attempt in push_round.attempts:
                key = attempt.device_id if attempt.device_id is not None else f"deleted-{attempt.pk}"
                if key not in last or last[key].outcome not in DeliveryAttempt.SETTLED_PUSH_OUTCOMES:
                    last[key] = attempt
        delivered = [a for a in last.values() if a.outcome in DeliveryAttempt.DELIVERED_PUSH_OUTCOMES]
        others = [a for a in last.values() if a.outcome not in DeliveryAttempt.DELIVERED_PUSH_OUTCOMES]
        return delivered, others

    def _other_fate(self, attempt: DeliveryAttempt) -> str:
        if attempt.outcome == Outcome.DEVICE_GONE:
            reason = _error_code(attempt.error) or "unregistered"
            return f"was deactivated ({reason}) on {self._day(attempt.created_at)}"
        if attempt.outcome == Outcome.REJECTED:
            return f"was rejected by FCM ({attempt.error})"
        return f"kept failing temporarily ({attempt.error})"

    def _day(self, moment: datetime) -> str:
        local = timezone.localtime(moment)
        return f"{local.day} {local.strftime('%b')}" + ("" if local.year == self.now.year else f" {local.year}")

    def _others_phrase(self, others: list[DeliveryAttempt]) -> str:
        if not others:
            return ""
        if len(others) == 1:
            return f", the other {self._other_fate(others[0])}"
        listed = "; ".join(f"{device_name(a.device)} {self._other_fate(a)}" for a in others)
        return f"; the others: {listed}"

    def _pushed(self) -> tuple[str, str, list[str]]:
        delivery = self.delivery
        delivered, others = self._device_fates()
        total = len(delivered) + len(others)
        moment = self.at(delivery.pushed_at or self.now)
        presence_now = self.presence.phrase(self.now)
        if delivery.push_simulated:
            return (
                "pushed_simulated",
                f"was not notified: {presence_now}; the push at {moment} was only simulated by the log push backend "
                f"for {len(delivered)} device{_plural(len(delivered))} (recorded, but nothing reached a phone: "
                "no FCM credentials are configured); no client has acknowledged it.",
                [],
            )
        return (
            "pushed",
            f"was notified by push: {presence_now}; pushed to {len(delivered)} of {total} "
            f"device{_plural(total)} at {moment}{self._others_phrase(others)}; no client has acknowledged it yet.",
            [],
        )

    # --- Failed -----------------------------------------------------------------------------------------------
    def _failure(self) -> str:
        reason = self.delivery.failure_reason
        if reason == Reason.EXPIRED and self.notification.expires_at:
            return f"it expired at {self.at(self.notification.expires_at)} (expired notifications are never pushed)"
        if reason == Reason.RECIPIENT_INACTIVE:
            return "the account was deactivated (nothing is sent to it any more)"
        if reason == Reason.NO_DEVICES:  # its last_error only restates it; the summary says why
            return "no active device to push to"
        if reason == Reason.IN_APP_ONLY:
            return "it is in-app only and is never pushed (the inbox and the next connection show it)"
        label = Reason(reason).label if reason in Reason.values else reason
        error = f" ({self.delivery.last_error.rstrip('.')})" if self.delivery.last_error else ""
        return f"{label.lower()}{error}"

    def _failed(self) -> tuple[str, str, list[str]]:
        delivery = self.delivery
        reason = delivery.failure_reason
        failed_at = self.at(delivery.failed_at or self.now)
        presence_now = self.presence.phrase(self.now)
        if reason == Reason.EXPIRED:
            expires = self.at(self.notification.expires_at) if self.notification.expires_at else "its expiry"
            return (
                "expired",
                f"was not notified: {presence_now}; it expired at {expires} before any client acknowledged it, "
                f"and expired notifications are never pushed (failed at {failed_at}).",
                [],
            )
        if reason == Reason.RECIPIENT_INACTIVE:
            return (
                "recipient_inactive",
                f"was not notified: the account was deactivated; its open deliveries failed at {failed_at}.",
                [],
            )
        if reason == Reason.IN_APP_ONLY:
            return (
                "in_app_only",
                f"was not notified live: {presence_now}; the notification is in-app only, so it was not pushed "
                f"(closed at {failed_at}); the inbox shows it and the next connection replays it.",
                [],
            )
        if reason == Reason.PUSH_OFF:
            why = delivery.last_error.rstrip(".") or "push turned off by the user"
            return (
                "push_off",
                f"was not pushed: {why[:1].lower()}{why[1:]} (at {failed_at}); it is in their inbox, and their "
                f"sockets got it if they were online; {presence_now}.",
                [],
            )
        if reason == Reason.PUSH_REJECTED:
            answer = f"FCM rejected the push at {failed_at} ({delivery.last_error})"
        elif reason == Reason.PUSH_UNAVAILABLE:
            rounds = len(self.rounds)
            answer = (
                f"FCM kept failing temporarily for {rounds} push round{_plural(rounds)} "
                f"({delivery.last_error}); given up at {failed_at}"
            )
        elif reason == Reason.NO_DEVICES:
            answer = f"there was no active device to push to (failed at {failed_at}){self._why_no_device()}"
        else:
            answer = f"failed at {failed_at}: {self._failure()}"
        return "failed", f"was not notified: {presence_now}; {answer}.", []

    def _why_no_device(self) -> str:
        _, others = self._device_fates()
        gone = [a for a in others if a.outcome == Outcome.DEVICE_GONE]
        if gone:
            listed = ", ".join(f"{device_name(a.device)} ({_error_code(a.error) or 'unregistered'})" for a in gone)
            return f": every token was dead at the push on {self._day(gone[0].created_at)}: {listed}"
        inactive = [device for device in self.devices if not device.active]
        if inactive:
            listed = ", ".join(
                f"{device_name(device)} ({device.deactivated_reason or 'deactivated'})" for device in inactive
            )
            return f": their device{_plural(len(inactive))} had been deactivated: {listed}"
        return ": they have never registered a device for push"

    # --- Open ---------------------------------------------------------------------------------------------------
    def _open(self) -> tuple[str, str, list[str]]:
        delivery = self.delivery
        presence_now = self.presence.phrase(self.now)
        steps = self._overdue()
        if not delivery.recipient.is_active:
            return (
                "recipient_inactive",
                "has not been notified: the account is deactivated; its next step fails it (recipient_inactive)"
                f"{self._next()}.",
                steps,
            )
        if self._held_for_quiet_hours():
            held = self.deferrals[-1]
            return (
                "quiet_hours",
                f"has not been pushed yet: it came due inside their quiet hours at {self.at(held.created_at)} "
                f"({held.error.rstrip('.')}); the retry sweep takes it{self._next(' at {}')}; {presence_now}.",
                steps,
            )
        if delivery.push_attempts:
            return self._pushing(presence_now, steps)
        if self.offline_at:
            return (
                "waiting",
                f"has not been notified yet: offline at {self.at(self.offline_at[-1])}, so a push was queued, and no "
                f"push worker has taken it yet{self._next('; the retry sweep queues it again at {}')}; {presence_now}.",
                steps,
            )
        if delivery.status == Status.SENT:
            return self._sending(presence_now, steps)
        if self.presence.known and not self.presence.connections and self.presence.incomplete_for > 0:
            return (
                "held",
                "has not been notified yet: pushes are held while the presence registry is rebuilt after a Redis "
                f"restart (complete in {self.presence.incomplete_for:.0f} s); next look{self._next(' at {}')}.",
                steps,
            )
        if delivery.next_attempt_at and delivery.next_attempt_at > self.now:
            return (
                "waiting",
                f"has not been notified yet: published at {self.at(delivery.created_at)}, it is being dispatched; "
                f"the retry sweep takes it at {self.at(delivery.next_attempt_at)} if dispatch does not reach them; "
                f"{presence_now}.",
                steps,
            )
        return (
            "waiting",
            f"has not been notified yet: it was never dispatched (the dispatch after publishing did not run, or "
            f"was held while the presence registry was incomplete); the retry sweep takes it{self._next(' at {}')}; "
            f"{presence_now}.",
            steps,
        )

    def _held_for_quiet_hours(self) -> bool:
        """The last thing the push path did was to hold it for quiet hours, and it still waits for their end."""
        if not self.deferrals or self.delivery.next_attempt_at is None:
            return False
        last_round = self.rounds[-1].at if self.rounds else None
        return last_round is None or self.deferrals[-1].created_at >= last_round

    def _next(self, template: str = " (next look at {})") -> str:
        moment = self.delivery.next_attempt_at
        return template.format(self.at(moment)) if moment else ""

    def _overdue(self) -> list[str]:
        moment = self.delivery.next_attempt_at
        if moment is None or moment > self.now - OVERDUE_AFTER:
            return []
        return [
            f"Overdue: the retry sweep should have taken it at {self.at(moment)} ({duration(self.now - moment)} ago); "
            "is Celery beat running the sweep?"
        ]

    def _sending(self, presence_now: str, steps: list[str]) -> tuple[str, str, list[str]]:
        delivery = self.delivery
        sends = delivery.attempts
        first = self.sends[0].created_at if self.sends else delivery.sent_at or delivery.created_at
        most = settings.NOTIFY_MAX_WS_ATTEMPTS
        heard = (
            f"sent live over WebSocket at {self.at(first)}, not acknowledged yet ({sends} send{_plural(sends)} so far)"
        )
        next_at = delivery.next_attempt_at
        if next_at is None:
            return "sending", f"has not acknowledged it: {heard}; {presence_now}.", steps
        scheduled = [send.created_at + websocket_retry_delay(number) for number, send in enumerate(self.sends, 1)]
        if scheduled and next_at < min(scheduled) - timedelta(seconds=1):
            steps = [
                f"Its next step was brought forward to {self.at(next_at)} (an admin's “retry now”: no wait of the "
                "schedule ends then).",
                *steps,
            ]
        if sends >= most:
            if scheduled and next_at > max(scheduled) + timedelta(seconds=1):
                queued = next_at - timedelta(seconds=settings.NOTIFY_PUSH_LEASE)
                answer = (
                    f"{heard}; its last wait ran out and a push was queued at {self.at(queued)}, waiting for a push "
                    f"worker (the sweep looks again at {self.at(next_at)})"
                )
            else:
                answer = f"{heard}; the push fallback comes at {self.at(next_at)} unless a client acknowledges it"
            return "sending", f"has not acknowledged it: {answer}; {presence_now}.", steps
        fallback = next_at + sum((websocket_retry_delay(n) for n in range(sends + 1, most + 1)), timedelta())
        return (
            "sending",
            f"has not acknowledged it: {heard}; next resend at {self.at(next_at)} if still online (a push at once "
            f"if not); the push fallback comes by {self.at(fallback)} at the latest; {presence_now}.",
            steps,
        )

    def _pushing(self, presence_now: str, steps: list[str]) -> tuple[str, str, list[str]]:
        delivery = self.delivery
        done = delivery.push_attempts
        if delivery.push_claimed_until and delivery.push_claimed_until > self.now:
            started = delivery.push_claimed_until - timedelta(seconds=settings.NOTIFY_PUSH_LEASE)
            return (
                "pushing",
                f"has not been notified yet: push round {done} is under way since {self.at(started)}; {presence_now}.",
                steps,
            )
        last = self.rounds[-1] if self.rounds else None
        error = f" ({delivery.last_error})" if delivery.last_error else ""
        met = (
            f"push round {done} at {self.at(last.at)} met temporary errors{error}"
            if last
            else f"{done} push round{_plural(done)} ran{error}"
        )
        next_at = delivery.next_attempt_at
        if last and next_at:
            ceiling = min(settings.NOTIFY_PUSH_RETRY_DELAY * 2 ** (done - 1), PUSH_RETRY_MAX_DELAY.total_seconds())
            earliest = last.at + timedelta(seconds=ceiling / 2)
            expiry = self.notification.expires_at
            if next_at < earliest - timedelta(seconds=1) and next_at != expiry:
                steps = [
                    f"Its next round was brought forward to {self.at(next_at)} (an admin's “retry now”: the backoff "
                    f"after round {done} ran to {self.at(earliest)} at the earliest).",
                    *steps,
                ]
        next_round = (
            f"next round at {self.at(next_at)} (round {done + 1} of at most {settings.NOTIFY_MAX_PUSH_ATTEMPTS})"
            if next_at
            else "no next round is scheduled"
        )
        return "waiting", f"has not been notified yet: {met}; {next_round}; {presence_now}.", steps


# --- A user with no delivery of a notification ---------------------------------------------------------------


def explain_no_delivery(
    *, user: AbstractBaseUser, notification: Notification, now: datetime | None = None
) -> Explanation:
    """Why `user` has no Delivery of `notification` at all: what on their account could explain it."""
    now = now or timezone.now()
    published = notification.created_at
    recipients = notification.deliveries.count()
    who = person(user)
    summary = (
        f"{who} had no delivery of “{notification.title}”: it went to {recipients} other "
        f"recipient{_plural(recipients)} (published at {time_of_day(published, today=now)})."
    )
    reasons: list[str] = []
    if not getattr(user, "is_active", True):
        reasons.append("The account is deactivated: publishing skips deactivated accounts.")
    date_joined = getattr(user, "date_joined", None)
    if date_joined and date_joined > published:
        reasons.append(
            f"The account was created at {time_of_day(date_joined, today=now)}, after the notification was "
            f"published at {time_of_day(published, today=now)}."
        )
    document = notification.document
    if document is not None:
        department = document.department
        membership = DepartmentMembership.objects.filter(department=department, user_id=user.pk).first()
        if membership is None:
            reasons.append(
                f"They are not a member of {department.name}, the department of the document “{document.title}”."
            )
        elif membership.joined_at > published:
            reasons.append(
                f"They joined {department.name} (the document's department) at "
                f"{time_of_day(membership.joined_at, today=now)}, after it was published: a notification goes to "
                "the members at the moment it is published."
            )
    if muted := _muted_phrase(user_id=user.pk, event=notification.event, now=now):
        reasons.append(muted)
    retention = settings.NOTIFY_RETENTION_DAYS
    if retention and published < now - timedelta(days=retention):
        reasons.append(
            f"Settled deliveries are deleted {retention} days after they last changed (NOTIFY_RETENTION_DAYS): "
            "theirs may have been pruned."
        )
    if not reasons:
        reasons.append(
            "Nothing on their account explains it: the publisher did not address them, or a department of "
            "theirs (NotifyHub records who got a notification, not whom the publisher named)."
        )
    return Explanation(verdict="no_delivery", summary=summary, details=reasons)


def _muted_phrase(*, user_id: int, event: str, now: datetime) -> str:
    """A user who has the event type muted is no recipient of it (notifications/preferences.py): say so."""
    [preferences] = push_settings_for(user_ids=[user_id], event=event).values() or [None]
    if preferences is None or not preferences.muted:
        return ""
    choice = EventPreference.objects.filter(user_id=user_id, event=event, muted=True).first()
    if choice is None:
        return f"{event} is muted by the organisation's default, and they have not unmuted it: it is not delivered."
    return (
        f"They muted {event} (muted by them, last changed at {time_of_day(choice.updated_at, today=now)}): "
        "a muted event type is not delivered to them at all."
    )
