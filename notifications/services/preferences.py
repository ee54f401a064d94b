"""A user changes how they want to be notified: the API (/api/me/preferences/) and the settings page call this.

The rules are checked here, once, for both: a known IANA time zone; quiet hours with both ends or neither, not
equal; event types the organisation lists (or the user has a choice for already); no mute and no push-off for a
mandatory event type. Anything refused raises `PreferencesRefused` with a message per input field, and nothing
is written. A change hands the user's pushes held for quiet hours back to the sweep, so the new settings decide
them (quiet hours ended early, push turned off) rather than the old window's end. What the choices mean for a
notification is notifications/preferences.py.
"""

from dataclasses import dataclass
from datetime import time
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from notifications.errors import NotificationError
from notifications.models import Delivery, DeliveryAttempt, EventPreference, UserPreferences, is_time_zone
from notifications.preferences import Preferences, known_event_policies, preferences_of


class PreferencesRefused(NotificationError):
    """Settings a user may not have; `fields` names which, by input field."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self._fields = fields
        super().__init__(next(iter(fields.values()))[0], code="invalid")

    def fields(self) -> dict[str, list[str]]:
        return self._fields


@dataclass(frozen=True)
class EventChange:
    """The user's choice for one event type, as given: `push`/`muted` True or False choose, None resets to the
    organisation's default; a key left out (`keep`) keeps the current choice."""

    event: str
    push: bool | None = None
    muted: bool | None = None
    keep: frozenset[str] = frozenset()  # which of push/muted were not given


GENERAL_FIELDS = ("time_zone", "quiet_hours_start", "quiet_hours_end", "urgent_breaks_through", "push_enabled")


@transaction.atomic
def preferences_update(
    *, user_id: int, changes: dict[str, Any], events: list[EventChange] | None = None, replace: bool = False
) -> Preferences:
    """Apply `changes` (any of GENERAL_FIELDS) and the event types' choices; returns the settings now in force.

    `replace=True` (a PUT, the settings page) also resets the choice of every event type `events` does not
    list; otherwise only the listed ones change.
    """
    unknown = sorted(set(changes) - set(GENERAL_FIELDS))
    if unknown:
        raise PreferencesRefused({name: ["Unknown field."] for name in unknown})
    stored = UserPreferences.objects.select_for_update().filter(user_id=user_id).first()
    stored = stored or UserPreferences(user_id=user_id)
    for name, value in changes.items():
        setattr(stored, name, value)
    existing = {choice.event: choice for choice in EventPreference.objects.filter(user_id=user_id)}
    errors = _general_errors(stored) | _event_errors(events or [], known=existing.keys())
    if errors:
        raise PreferencesRefused(errors)
    stored.save()
    listed = {change.event for change in events or []}
    for change in events or []:
        current = existing.get(change.event)
        push = current.push if current and "push" in change.keep else change.push
        muted = current.muted if current and "muted" in change.keep else change.muted
        if push is None and muted is None:
            EventPreference.objects.filter(user_id=user_id, event=change.event).delete()
        else:
            EventPreference.objects.update_or_create(
                user_id=user_id, event=change.event, defaults={"push": push, "muted": muted}
            )
    if replace:
        EventPreference.objects.filter(user_id=user_id).exclude(event__in=listed).delete()
    _held_pushes_due_now(user_id=user_id)
    return preferences_of(user_id)


def _held_pushes_due_now(*, user_id: int) -> int:
    """Hand the user's pushes held for quiet hours back to the next sweep, to be decided again under the new
    settings: quiet hours moved or gone, push turned off. Nothing else changes (a push round decides)."""
    now = timezone.now()
    held = DeliveryAttempt.objects.filter(delivery=OuterRef("pk"), outcome=DeliveryAttempt.Outcome.DEFERRED)
    return (
        Delivery.objects.filter(
            recipient_id=user_id, status__in=Delivery.OPEN_STATUSES, push_claimed_by="", next_attempt_at__gt=now
        )
        .filter(Exists(held))
        .update(next_attempt_at=now, updated_at=now)
    )


def _general_errors(stored: UserPreferences) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not is_time_zone(stored.time_zone):
        errors["time_zone"] = [f"'{stored.time_zone}' is not a known time zone (an IANA name such as Europe/Berlin)."]
    start, end = stored.quiet_hours_start, stored.quiet_hours_end
    for name, value in (("quiet_hours_start", start), ("quiet_hours_end", end)):
        if value is not None and not isinstance(value, time):
            errors[name] = ["Give a time of day (HH:MM)."]
    if (start is None) != (end is None):
        missing = "quiet_hours_end" if end is None else "quiet_hours_start"
        errors.setdefault(missing, []).append("Quiet hours need a start and an end (or neither).")
    elif start is not None and start == end:
        errors.setdefault("quiet_hours_end", []).append("The end must differ from the start.")
    return errors


def _event_errors(events: list[EventChange], *, known) -> dict[str, list[str]]:
    policies = known_event_policies()
    errors: dict[str, list[str]] = {}
    seen: set[str] = set()
    for index, change in enumerate(events):
        path = f"events.{index}"
        if change.event in seen:
            errors[f"{path}.event"] = [f"{change.event} is listed twice."]
            continue
        seen.add(change.event)
        policy = policies.get(change.event)
        if policy is None and change.event not in known:
            errors[f"{path}.event"] = [f"Unknown event type {change.event!r}: ask an admin to list it."]
            continue
        if policy is not None and policy.mandatory:
            if change.muted:
                errors[f"{path}.muted"] = [f"{change.event} is mandatory: it cannot be muted."]
            if change.push is False:
                errors[f"{path}.push"] = [f"{change.event} is mandatory: its push cannot be turned off."]
    return errors
