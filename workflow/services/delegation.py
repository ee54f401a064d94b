"""Out of office: a user names a delegate for a period, and new tasks for them go to the delegate meanwhile.

The rules (docs/api.md, "Out of office"):
- A delegation applies from `starts_at` (inclusive) until `ends_at` (exclusive), or until it is cancelled.
- One delegator has at most one delegation at any moment: overlapping ones are refused.
- Chains resolve: if bob delegates to carol and carol is away too, bob's new tasks go on to carol's delegate,
  always on behalf of bob. A loop (bob → carol → bob, or longer) is refused when it would be created, among
  the delegations overlapping the new one's period; resolving also stops at a person it has already met.
- The requester never becomes their own approver: if the chain reaches them, the task stays with the approver.
- An inactive delegate (deactivated since) ends the chain before them: the task stays with the last active
  person of the chain (the approver, if it was their own delegate).
- Only tasks opened while the delegation applies follow it; tasks opened earlier stay where they are.
"""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from workflow.errors import WorkflowError
from workflow.models import Delegation

# A constant key for pg_advisory_xact_lock: creations run one at a time, so two users delegating to each other
# at the same moment cannot both miss the loop. Creations are rare; the lock is held for a few queries.
_CREATE_LOCK_KEY = 0x5DE1E6A7E

# However long a chain of delegations, resolving stops after this many hops (the loop check keeps chains
# acyclic; this only bounds the queries of a long honest chain).
MAX_CHAIN = 10


@transaction.atomic
def delegation_create(*, delegator: User, delegate: User, starts_at: datetime, ends_at: datetime) -> Delegation:
    """Send `delegator`'s new tasks to `delegate` from `starts_at` until `ends_at`."""
    delegation_check(delegator=delegator, delegate=delegate, starts_at=starts_at, ends_at=ends_at)
    return Delegation.objects.create(delegator=delegator, delegate=delegate, starts_at=starts_at, ends_at=ends_at)


@transaction.atomic
def delegation_check(*, delegator: User, delegate: User, starts_at: datetime, ends_at: datetime) -> None:
    """Raise the `WorkflowError` `delegation_create` would, with its field; else nothing (a form's clean uses it).

    Holds the creation lock until the caller's transaction ends, so a check followed by a create in the same
    transaction cannot be overtaken.
    """
    if delegate.pk == delegator.pk:
        raise WorkflowError("You cannot delegate to yourself.", code="invalid", field="delegate")
    if not delegate.is_active:
        raise WorkflowError(
            f"{delegate.get_username()} is inactive and cannot take your tasks.", code="invalid", field="delegate"
        )
    if ends_at <= starts_at:
        raise WorkflowError("The end must come after the start.", code="invalid", field="ends_at")
    if ends_at <= timezone.now():
        raise WorkflowError("The end is in the past.", code="invalid", field="ends_at")

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CREATE_LOCK_KEY])
    overlapping = _overlapping(starts_at=starts_at, ends_at=ends_at)
    clash = overlapping.filter(delegator_id=delegator.pk).select_related("delegate").first()
    if clash is not None:
        raise WorkflowError(
            f"You already delegate to {clash.delegate.get_username()} from {_day(clash.starts_at)} "
            f"until {_day(clash.ended_at)}; cancel that first or choose another period.",
            code="overlap",
            field="starts_at",
        )
    loop = _path_back(overlapping=overlapping, start=delegate.pk, target=delegator.pk)
    if loop is not None:
        names = {user.pk: user.get_username() for user in get_user_model().objects.filter(pk__in=loop)}
        chain = " → ".join([delegator.get_username(), *(names[user_id] for user_id in loop)])
        raise WorkflowError(
            f"That would make a loop of delegations in this period ({chain}).", code="loop", field="delegate"
        )


@transaction.atomic
def delegation_cancel(*, delegation: Delegation, cancelled_by: User) -> Delegation:
    """End the delegation now (or drop it if it has not started). Tasks it already moved stay with the delegate."""
    delegation = Delegation.objects.select_for_update().get(pk=delegation.pk)
    if cancelled_by.pk != delegation.delegator_id and not getattr(cancelled_by, "is_staff", False):
        raise WorkflowError("Only the delegator can cancel a delegation.", code="forbidden")
    now = timezone.now()
    if delegation.cancelled_at is not None or delegation.ends_at <= now:
        raise WorkflowError(f"Delegation {delegation.pk} has ended already.")
    delegation.cancelled_at = now
    delegation.save(update_fields=["cancelled_at"])
    return delegation


@dataclass(frozen=True)
class Assignment:
    """Who gets a step's task: the approver, or a delegate acting on the approver's behalf."""

    assignee_id: int
    on_behalf_of_id: int | None = None
    delegation: Delegation | None = None  # the approver's own delegation, when one applied


def task_assignment(*, approver_id: int, requester_id: int, at: datetime) -> Assignment:
    """Who takes a task of `approver_id` opened at `at`: the end of the chain of delegations applying then."""
    chain: list[Delegation] = []
    seen = {approver_id}
    current = approver_id
    while len(chain) < MAX_CHAIN:
        delegation = (
            _applying_at(at).filter(delegator_id=current, delegate__is_active=True).select_related("delegate").first()
        )
        if delegation is None or delegation.delegate_id in seen:
            break
        if delegation.delegate_id == requester_id:
            # The requester would approve their own document: the task stays with the approver.
            return Assignment(assignee_id=approver_id)
        chain.append(delegation)
        seen.add(delegation.delegate_id)
        current = delegation.delegate_id
    if not chain:
        return Assignment(assignee_id=approver_id)
    return Assignment(assignee_id=current, on_behalf_of_id=approver_id, delegation=chain[0])


def _applying_at(at: datetime) -> QuerySet[Delegation]:
    return Delegation.objects.filter(starts_at__lte=at, ends_at__gt=at).filter(
        Q(cancelled_at__isnull=True) | Q(cancelled_at__gt=at)
    )


def _overlapping(*, starts_at: datetime, ends_at: datetime) -> QuerySet[Delegation]:
    """Delegations applying at some moment of [starts_at, ends_at) (a cancelled one until its cancellation)."""
    return Delegation.objects.filter(starts_at__lt=ends_at, ends_at__gt=starts_at).filter(
        Q(cancelled_at__isnull=True) | Q(cancelled_at__gt=starts_at)
    )


def _path_back(*, overlapping: QuerySet[Delegation], start: int, target: int) -> list[int] | None:
    """The users from `start` to `target` along `overlapping` delegations, if there is such a path."""
    edges: dict[int, set[int]] = {}
    for delegator_id, delegate_id in overlapping.values_list("delegator_id", "delegate_id"):
        edges.setdefault(delegator_id, set()).add(delegate_id)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        user_id = frontier.pop()
        if user_id == target:
            return paths[user_id]
        for next_id in sorted(edges.get(user_id, ())):
            if next_id not in paths:
                paths[next_id] = [*paths[user_id], next_id]
                frontier.append(next_id)
    return None


def _day(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")
