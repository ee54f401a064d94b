"""What a recipient wants for an event type, and what that means for a notification: the rules, in one place.

- In-app (socket and inbox) always, unless the user muted the event type: a muted one is not delivered to them at
  all (no Delivery row, no frame, no push). Publish filters muted recipients out in its recipients query, set-based
  (`unmuted_recipients_sql`): part of the recipients query, so no query of its own and none per recipient.
- Push on or off, per event type and overall: off ends the delivery `failed` / `push_off` where it would have been
  pushed; the inbox and the socket still have it.
- Quiet hours in the user's time zone: a push that comes due inside them is held until they end (`QuietHours`);
  `urgent` breaks through if the user allows it. The socket and the inbox get everything live.
- Mandatory event types (an admin's EventTypePolicy, and the workflow's events always) ignore mutes and push-off;
  quiet hours still hold their pushes.

The push is decided when it is about to happen (`push_decision`, called by every push round in
services/pushes.py), not at publish: publish stays as cheap as before, and a choice made after publish (push
turned off, quiet hours set) holds for pushes still to come. An empty choice follows the organisation's policy.
"""

import enum
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import F, OuterRef, Subquery

from notifications.models import EventPreference, EventTypePolicy, Notification, UserPreferences
from notifications.reserved import WORKFLOW_EVENTS
from notifications.sql import Columns


def is_always_mandatory(event: str) -> bool:
    """The workflow's events: the work waits on them, so nobody mutes them or turns their push off."""
    return event in WORKFLOW_EVENTS


@dataclass(frozen=True)
class QuietHours:
    """A daily window of local wall-clock time, [start, end); end before start means it crosses midnight.

    Membership is read on the wall clock of the user's zone, so it follows DST changes as a person does. The
    window ends at the first instant the wall clock shows `end` again: on a spring-forward night an end inside
    the skipped hour ends it when the clocks jump; on a fall-back night the repeated hour is inside the window
    each time the clock shows it.
    """

    start: time
    end: time
    zone: zoneinfo.ZoneInfo

    def end_after(self, now: datetime) -> datetime | None:
        """When the window `now` is in ends (aware, UTC); None if `now` is outside it."""
        local = now.astimezone(self.zone)
        wall = local.time().replace(tzinfo=None)
        if self.start < self.end:
            inside, end_day = self.start <= wall < self.end, local.date()
        else:  # crosses midnight: the evening part ends tomorrow, the morning part today
            inside = wall >= self.start or wall < self.end
            end_day = local.date() + timedelta(days=1) if wall >= self.start else local.date()
        if not inside:
            return None
        return _first_instant_showing(datetime.combine(end_day, self.end), self.zone, after=now)

    def describe(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M} {self.zone.key}"


def _first_instant_showing(wall: datetime, zone: zoneinfo.ZoneInfo, *, after: datetime) -> datetime:
    """The first instant after `after` at which the wall clock of `zone` reads `wall` (naive) or later."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first <= second:  # an ordinary time (equal), or one the fall-back shows twice: the next showing
        return first if first > after else second
    # A time the spring-forward skips: fold=0 reads it with the offset before the jump (a later instant), fold=1
    # with the one after (an earlier instant). The jump lies between the two: find it to the second.
    low, high = second, first
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


@dataclass(frozen=True)
class PushSettings:
    """One recipient's settings for one event type: what `push_decision` needs."""

    event: str
    mandatory: bool
    push_enabled: bool  # the user's switch for every push
    event_push: bool  # this event type's push: the user's choice, else the organisation's default
    muted: bool  # the user's choice, else the organisation's default (never for a mandatory event)
    quiet_hours: QuietHours | None
    urgent_breaks_through: bool


DEFAULT_POLICY = {"mandatory": False, "default_push": True, "default_muted": False}


def push_settings_for(*, user_ids: Iterable[int], event: str) -> dict[int, PushSettings]:
    """Each user's PushSettings for `event`: one query, however many users (a user without rows: the defaults)."""
    policy = EventTypePolicy.objects.filter(event=event)
    choice = EventPreference.objects.filter(user=OuterRef("pk"), event=event)
    rows = (
        get_user_model()
        .objects.filter(pk__in=list(user_ids))
        .values(
            "pk",
            time_zone=F("notify_preferences__time_zone"),
            quiet_start=F("notify_preferences__quiet_hours_start"),
            quiet_end=F("notify_preferences__quiet_hours_end"),
            urgent_breaks_through=F("notify_preferences__urgent_breaks_through"),
            push_enabled=F("notify_preferences__push_enabled"),
            chosen_push=Subquery(choice.values("push")[:1]),
            chosen_muted=Subquery(choice.values("muted")[:1]),
            policy_mandatory=Subquery(policy.values("mandatory")[:1]),
            policy_push=Subquery(policy.values("default_push")[:1]),
            policy_muted=Subquery(policy.values("default_muted")[:1]),
        )
    )
    return {row["pk"]: _push_settings(event, row) for row in rows}


def _push_settings(event: str, row: Mapping[str, Any]) -> PushSettings:
    mandatory = is_always_mandatory(event) or bool(row["policy_mandatory"])
    default_push = row["policy_push"] if row["policy_push"] is not None else DEFAULT_POLICY["default_push"]
    default_muted = bool(row["policy_muted"])
    quiet_hours = None
    if row["quiet_start"] is not None and row["quiet_end"] is not None:
        quiet_hours = QuietHours(row["quiet_start"], row["quiet_end"], zoneinfo.ZoneInfo(row["time_zone"]))
    return PushSettings(
        event=event,
        mandatory=mandatory,
        push_enabled=row["push_enabled"] is not False,
        event_push=row["chosen_push"] if row["chosen_push"] is not None else default_push,
        muted=not mandatory and (row["chosen_muted"] if row["chosen_muted"] is not None else default_muted),
        quiet_hours=quiet_hours,
        urgent_breaks_through=bool(row["urgent_breaks_through"]),
    )


class PushAction(enum.StrEnum):
    PUSH = "push"
    DEFER = "defer"  # hold until `until` (quiet hours)
    DROP = "drop"  # never (push off, or muted after publish)


@dataclass(frozen=True)
class PushDecision:
    action: PushAction
    reason: str = ""  # for the attempt log and the delivery's last_error: why not now
    until: datetime | None = None


def push_decision(*, notification: Notification, preferences: PushSettings, now: datetime) -> PushDecision:
    """Push `notification` to its recipient now, later (quiet hours), or never (push off, muted)?

    The one place that decides; extend it here (e.g. a notification that must never be pushed).
    """
    if not preferences.mandatory:
        if preferences.muted:
            return PushDecision(PushAction.DROP, f"Muted by the user: {preferences.event}.")
        if not preferences.push_enabled:
            return PushDecision(PushAction.DROP, "Push turned off by the user (every event).")
        if not preferences.event_push:
            return PushDecision(PushAction.DROP, f"Push turned off by the user for {preferences.event}.")
    if preferences.quiet_hours is None:
        return PushDecision(PushAction.PUSH)
    if notification.priority == Notification.Priority.URGENT and preferences.urgent_breaks_through:
        return PushDecision(PushAction.PUSH)
    until = preferences.quiet_hours.end_after(now)
    if until is None:
        return PushDecision(PushAction.PUSH)
    local_end = until.astimezone(preferences.quiet_hours.zone)
    return PushDecision(
        PushAction.DEFER,
        f"Quiet hours {preferences.quiet_hours.describe()}: held until {local_end:%H:%M} their time.",
        until,
    )


def unmuted_recipients_sql(*, targets: str, user_column: str) -> str:
    """SQL selecting the rows of `targets` (a subquery with a `user_column`) whose user gets the event: everyone
    for a mandatory event, else those who have not muted it (their choice, else the organisation's default).

    Two parameters, both the event name, then one: whether it is always mandatory (`is_always_mandatory`). One
    statement with the caller's; a hash join against the few EventPreference rows of that event.
    """
    policy, choice = Columns(EventTypePolicy), Columns(EventPreference)
    return f"""
        SELECT targets.* FROM ({targets}) targets
         CROSS JOIN (
            SELECT COALESCE(bool_or(p.{policy.mandatory}), FALSE), COALESCE(bool_or(p.{policy.default_muted}), FALSE)
              FROM {policy.table} p WHERE p.{policy.event} = %s
         ) AS policy(mandatory, default_muted)
          LEFT JOIN {choice.table} c ON c.{choice.user} = targets.{user_column} AND c.{choice.event} = %s
         WHERE %s OR policy.mandatory OR NOT COALESCE(c.{choice.muted}, policy.default_muted)
    """  # noqa: S608 - identifiers come from model _meta; values are parameters


# --- The settings a user sees and edits (the API and the settings page) ---


@dataclass(frozen=True)
class EventChoice:
    event: str
    description: str
    mandatory: bool
    default_push: bool
    default_muted: bool
    push: bool | None  # the user's choice; None: the default
    muted: bool | None

    @property
    def effective_push(self) -> bool:
        return self.mandatory or (self.push if self.push is not None else self.default_push)

    @property
    def effective_muted(self) -> bool:
        return not self.mandatory and (self.muted if self.muted is not None else self.default_muted)


@dataclass(frozen=True)
class Preferences:
    time_zone: str
    quiet_hours_start: time | None
    quiet_hours_end: time | None
    urgent_breaks_through: bool
    push_enabled: bool
    events: list[EventChoice]


WORKFLOW_EVENT_DESCRIPTIONS = {
    "NewTask": "A document waits for your decision",
    "DocumentApproved": "Your document was approved",
    "DocumentRejected": "Your document was rejected",
    "TaskReminder": "A task has waited too long for your decision",
    "TaskEscalated": "A task in your department waits too long (you are its escalation contact)",
    "TaskDelegated": "Your task went to your delegate while you are away (inbox only, never pushed)",
}


def known_event_policies() -> dict[str, EventTypePolicy]:
    """Every event type users can configure: the workflow's, then the organisation's policies (unsaved rows for
    workflow events without one)."""
    policies = {
        event: EventTypePolicy(event=event, description=WORKFLOW_EVENT_DESCRIPTIONS.get(event, ""), mandatory=True)
        for event in WORKFLOW_EVENTS
    }
    for policy in EventTypePolicy.objects.all():
        if is_always_mandatory(policy.event):
            policy.mandatory = True
        policies[policy.event] = policy
    return policies


def preferences_of(user_id: int) -> Preferences:
    """The user's settings as they see them: three queries."""
    stored = UserPreferences.objects.filter(user_id=user_id).first() or UserPreferences(user_id=user_id)
    choices = {choice.event: choice for choice in EventPreference.objects.filter(user_id=user_id)}
    policies = known_event_policies()
    events = sorted(policies.keys() | choices.keys(), key=lambda event: (event not in WORKFLOW_EVENTS, event))
    return Preferences(
        time_zone=stored.time_zone or settings.TIME_ZONE,
        quiet_hours_start=stored.quiet_hours_start,
        quiet_hours_end=stored.quiet_hours_end,
        urgent_breaks_through=stored.urgent_breaks_through,
        push_enabled=stored.push_enabled,
        events=[_event_choice(event, policies.get(event), choices.get(event)) for event in events],
    )


def _event_choice(event: str, policy: EventTypePolicy | None, choice: EventPreference | None) -> EventChoice:
    policy = policy or EventTypePolicy(event=event, **DEFAULT_POLICY)
    return EventChoice(
        event=event,
        description=policy.description,
        mandatory=policy.mandatory or is_always_mandatory(event),
        default_push=policy.default_push,
        default_muted=policy.default_muted,
        push=choice.push if choice else None,
        muted=choice.muted if choice else None,
    )
