"""Two people delegating to each other at the same moment: one of them gets the loop refusal, never both a row."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from tests.support.factories import UserFactory
from tests.support.threads import Worker, wait_for_blocked_backends
from workflow import services
from workflow.errors import WorkflowError
from workflow.models import Delegation

pytestmark = pytest.mark.django_db(transaction=True)


def test_crossed_delegations_created_at_once_make_no_loop(bob, carol):
    starts_at = timezone.now()
    ends_at = starts_at + timedelta(days=2)

    def delegate(delegator, delegate_to):
        return services.delegation_create(
            delegator=delegator, delegate=delegate_to, starts_at=starts_at, ends_at=ends_at
        )

    # Hold the creation lock (a check takes it until its transaction ends), so both creations queue behind it
    # and run as close together as they can.
    with transaction.atomic():
        services.delegation_check(delegator=UserFactory(), delegate=UserFactory(), starts_at=starts_at, ends_at=ends_at)
        workers = [Worker(delegate, bob, carol), Worker(delegate, carol, bob)]
        for worker in workers:
            worker.start()
        with connection.cursor() as cursor:
            wait_for_blocked_backends(cursor, 2)

    outcomes = []
    for worker in workers:
        try:
            worker.outcome()
            outcomes.append("created")
        except WorkflowError as error:
            outcomes.append(error.code)

    assert sorted(outcomes) == ["created", "loop"]
    assert Delegation.objects.count() == 1
