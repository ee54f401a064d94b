"""My tasks' Out of office section: save a delegation, see it, cancel it; refusals beside their fields (never a
500), and a delegate's task says on whose behalf."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.support.factories import UserFactory
from workflow import services
from workflow.models import Delegation

pytestmark = pytest.mark.django_db
LOCAL_MINUTE = "%Y-%m-%dT%H:%M"


def page_of(response) -> str:
    return response.content.decode()


def field_error(page: str, field: str) -> str:
    match = re.search(rf'<p class="field-error" id="id_{field}_error">([^<]*)</p>', page)
    return match.group(1) if match else ""


def in_days(days: int) -> str:
    return (timezone.now() + timedelta(days=days)).strftime(LOCAL_MINUTE)


def test_the_section_has_labelled_fields_and_suggests_delegates(client_for, approvers):
    page = page_of(client_for(approvers[0]).get("/tasks/"))

    assert '<h2 id="out-of-office-title">Out of office</h2>' in page
    for label, field in [("Delegate", "delegate"), ("From", "starts_at"), ("Until", "ends_at")]:
        assert f'<label for="id_{field}">{label}</label>' in page
    assert 'type="datetime-local"' in page
    assert f'<option value="{approvers[1].username}">' in page


def test_a_delegation_is_saved_listed_and_cancelled(client_for, approvers):
    bob, carol = approvers
    client = client_for(bob)

    saved = client.post("/tasks/out-of-office/", {"delegate": carol.username, "starts_at": "", "ends_at": in_days(3)})

    assert saved.status_code == 302 and saved["Location"] == "/tasks/"
    delegation = Delegation.objects.get(delegator=bob)
    assert delegation.delegate == carol
    page = page_of(client.get("/tasks/"))
    assert "takes your new tasks" in page
    assert '<span class="pill pill-away">Away now</span>' in page

    cancelled = client.post(f"/tasks/out-of-office/{delegation.pk}/cancel/", follow=True)

    delegation.refresh_from_db()
    assert delegation.cancelled_at is not None
    assert "Out of office cancelled: new tasks come to you again." in page_of(cancelled)
    assert 'id="delegation-list"' not in page_of(cancelled)


@pytest.mark.parametrize(
    ("delegate", "ends_in_days", "field", "message"),
    [
        ("nobody", 3, "delegate", "No such user: nobody."),
        ("SELF", 3, "delegate", "You cannot delegate to yourself."),
        ("OTHER", -1, "ends_at", "The end must come after the start."),
        ("OTHER", None, "ends_at", "This field is required."),
    ],
)
def test_a_refusal_is_shown_beside_its_field_and_nothing_is_saved(
    client_for, approvers, delegate, ends_in_days, field, message
):
    bob, carol = approvers
    name = {"SELF": bob.username, "OTHER": carol.username}.get(delegate, delegate)
    ends_at = in_days(ends_in_days) if ends_in_days is not None else ""

    response = client_for(bob).post("/tasks/out-of-office/", {"delegate": name, "ends_at": ends_at})

    assert response.status_code == 400
    assert field_error(page_of(response), field) == message
    assert not Delegation.objects.exists()


def test_a_loop_is_refused_beside_the_delegate(client_for, approvers):
    bob, carol = approvers
    services.delegation_create(
        delegator=bob, delegate=carol, starts_at=timezone.now(), ends_at=timezone.now() + timedelta(days=3)
    )

    response = client_for(carol).post("/tasks/out-of-office/", {"delegate": bob.username, "ends_at": in_days(1)})

    assert response.status_code == 400
    assert "That would make a loop of delegations in this period" in field_error(page_of(response), "delegate")
    assert Delegation.objects.count() == 1


def test_someone_elses_delegation_cannot_be_cancelled(client_for, approvers):
    bob, carol = approvers
    delegation = services.delegation_create(
        delegator=bob, delegate=carol, starts_at=timezone.now(), ends_at=timezone.now() + timedelta(days=3)
    )

    response = client_for(UserFactory()).post(f"/tasks/out-of-office/{delegation.pk}/cancel/")

    assert response.status_code == 404
    delegation.refresh_from_db()
    assert delegation.cancelled_at is None


def test_the_delegates_task_says_on_whose_behalf(client_for, requester, department, approvers):
    bob, carol = approvers
    services.delegation_create(
        delegator=bob, delegate=carol, starts_at=timezone.now(), ends_at=timezone.now() + timedelta(days=3)
    )
    document = services.document_create(requester=requester, department=department, title="Offsite", approvers=[bob])
    services.document_submit(document=document, submitted_by=requester)

    page = page_of(client_for(carol).get("/tasks/"))
    document_page = page_of(client_for(carol).get(f"/documents/{document.pk}/"))

    assert f'<a href="/documents/{document.pk}/">Offsite</a>' in page
    assert "<strong>on behalf of" in page
    assert 'action="/documents/' in document_page and "/approve/" in document_page  # she may decide


def test_the_document_page_says_who_decided_on_whose_behalf(client_for, requester, department, approvers):
    bob, carol = approvers
    bob.first_name, bob.last_name = "Bob", "Baker"
    bob.save(update_fields=["first_name", "last_name"])
    services.delegation_create(
        delegator=bob, delegate=carol, starts_at=timezone.now(), ends_at=timezone.now() + timedelta(days=3)
    )
    document = services.document_create(requester=requester, department=department, title="Offsite", approvers=[bob])
    services.document_submit(document=document, submitted_by=requester)
    services.step_approve(document=document, approver=carol)

    page = page_of(client_for(requester).get(f"/documents/{document.pk}/"))

    assert f"Approved by {carol.get_full_name()} on behalf of Bob Baker, " in page
