"""The admin's delegations (out of office): added through the service's checks, cancelled by an action, never
edited; and a document's timeline saying who decided on whose behalf."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.support.factories import UserFactory
from workflow import services
from workflow.models import Delegation

pytestmark = pytest.mark.django_db
ADD_URL = reverse("admin:workflow_delegation_add")


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def form(delegator, delegate, *, starts_at, ends_at) -> dict:
    local_start, local_end = timezone.localtime(starts_at), timezone.localtime(ends_at)
    return {
        "delegator": delegator.pk,
        "delegate": delegate.pk,
        "starts_at_0": local_start.strftime("%Y-%m-%d"),
        "starts_at_1": local_start.strftime("%H:%M:%S"),
        "ends_at_0": local_end.strftime("%Y-%m-%d"),
        "ends_at_1": local_end.strftime("%H:%M:%S"),
    }


def test_staff_add_a_delegation_and_the_service_writes_it(admin_client, bob, carol):
    now = timezone.now().replace(microsecond=0)

    response = admin_client.post(ADD_URL, form(bob, carol, starts_at=now, ends_at=now + timedelta(days=2)))

    assert response.status_code == 302, response.content.decode()[-2000:]
    delegation = Delegation.objects.get()
    assert (delegation.delegator, delegation.delegate, delegation.ends_at) == (bob, carol, now + timedelta(days=2))


def test_a_loop_is_refused_beside_its_field_and_nothing_is_written(admin_client, bob, carol):
    now = timezone.now().replace(microsecond=0)
    services.delegation_create(delegator=bob, delegate=carol, starts_at=now, ends_at=now + timedelta(days=2))

    response = admin_client.post(ADD_URL, form(carol, bob, starts_at=now, ends_at=now + timedelta(days=1)))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "delegate": ["That would make a loop of delegations in this period (carol → bob → carol)."]
    }
    assert Delegation.objects.count() == 1


def test_the_cancel_action_ends_active_delegations_and_the_list_says_so(admin_client, bob, carol):
    now = timezone.now()
    delegation = services.delegation_create(
        delegator=bob, delegate=carol, starts_at=now, ends_at=now + timedelta(days=2)
    )
    changelist = reverse("admin:workflow_delegation_changelist")
    assert ">active<" in admin_client.get(changelist).content.decode()

    response = admin_client.post(changelist, {"action": "cancel", "_selected_action": [delegation.pk]}, follow=True)

    delegation.refresh_from_db()
    assert delegation.cancelled_at is not None
    page = response.content.decode()
    assert "Cancelled 1 delegation(s)." in page
    assert ">cancelled<" in page


def test_a_saved_delegation_is_not_edited_nor_deleted(admin_client, bob, carol):
    now = timezone.now()
    delegation = services.delegation_create(
        delegator=bob, delegate=carol, starts_at=now, ends_at=now + timedelta(days=2)
    )
    change = reverse("admin:workflow_delegation_change", args=[delegation.pk])

    admin_client.post(change, {"delegate": bob.pk})

    delegation.refresh_from_db()
    assert delegation.delegate == carol
    assert admin_client.get(reverse("admin:workflow_delegation_delete", args=[delegation.pk])).status_code == 403


def test_the_document_page_says_who_decided_on_whose_behalf(admin_client, requester, department, bob, carol):
    services.delegation_create(
        delegator=bob, delegate=carol, starts_at=timezone.now(), ends_at=timezone.now() + timedelta(days=2)
    )
    document = services.document_create(requester=requester, department=department, title="Budget", approvers=[bob])
    services.document_submit(document=document, submitted_by=requester)
    services.step_approve(document=document, approver=carol)

    page = admin_client.get(reverse("admin:workflow_document_change", args=[document.pk])).content.decode()

    assert "Task opened for step 1: Carol Cole (carol) on behalf of Bob Baker (bob) (out of office until" in page
    assert "Step 1 approved by Carol Cole (carol) on behalf of Bob Baker (bob)" in page


def test_the_state_filter_tells_active_upcoming_and_cancelled_apart(admin_client, bob, carol):
    now = timezone.now()
    active = services.delegation_create(delegator=bob, delegate=carol, starts_at=now, ends_at=now + timedelta(days=1))
    upcoming = services.delegation_create(
        delegator=carol, delegate=bob, starts_at=now + timedelta(days=2), ends_at=now + timedelta(days=3)
    )
    cancelled = services.delegation_create(
        delegator=bob, delegate=carol, starts_at=now + timedelta(days=5), ends_at=now + timedelta(days=6)
    )
    services.delegation_cancel(delegation=cancelled, cancelled_by=bob)
    changelist = reverse("admin:workflow_delegation_changelist")

    shown = {
        state: [row.pk for row in admin_client.get(changelist, {"state": state}).context["cl"].result_list]
        for state in ("active", "upcoming", "ended", "cancelled")
    }

    assert shown == {"active": [active.pk], "upcoming": [upcoming.pk], "ended": [], "cancelled": [cancelled.pk]}
