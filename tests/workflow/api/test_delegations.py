"""/api/me/delegations/: name a delegate for a period (out of office), list and cancel; bad input changes nothing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.support.api import assert_error, client_for
from tests.support.factories import UserFactory
from workflow import services
from workflow.models import Delegation

pytestmark = pytest.mark.django_db
URL = "/api/me/delegations/"


def create(user, body):
    return client_for(user).post(URL, body, format="json")


def test_a_delegation_is_created_listed_and_cancelled(bob, carol):
    ends_at = timezone.now() + timedelta(days=3)

    response = create(bob, {"delegate": "carol", "ends_at": ends_at.isoformat()})

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["delegate"] == {"id": carol.pk, "username": "carol", "name": "Carol Cole"}
    assert (body["active"], body["cancelled_at"]) == (True, None)
    assert response["Location"] == f"{URL}{body['id']}/"
    assert [item["id"] for item in client_for(bob).get(URL).json()["results"]] == [body["id"]]
    assert client_for(carol).get(URL).json()["results"] == []  # only ever mine

    cancelled = client_for(bob).delete(f"{URL}{body['id']}/")

    assert cancelled.status_code == 200, cancelled.content
    assert (cancelled.json()["active"], cancelled.json()["cancelled_at"] is not None) == (False, True)
    assert Delegation.objects.get().cancelled_at is not None
    assert_error(client_for(bob).delete(f"{URL}{body['id']}/"), 409, "invalid_transition")


def test_a_future_delegation_is_not_active_yet(bob, carol):
    starts_at = timezone.now() + timedelta(days=1)

    response = create(
        bob,
        {
            "delegate": carol.pk,
            "starts_at": starts_at.isoformat(),
            "ends_at": (starts_at + timedelta(days=1)).isoformat(),
        },
    )

    assert response.status_code == 201, response.content
    assert response.json()["active"] is False


@pytest.mark.parametrize(
    ("body", "status_code", "code", "field"),
    [
        ({"delegate": "nobody", "ends_at": "2099-01-01T00:00:00Z"}, 400, "invalid", "delegate"),
        ({"delegate": "bob", "ends_at": "2099-01-01T00:00:00Z"}, 400, "invalid", "delegate"),
        ({"delegate": "carol"}, 400, "invalid", "ends_at"),
        ({"delegate": "carol", "ends_at": "soon"}, 400, "invalid", "ends_at"),
        ({"delegate": "carol", "ends_at": "2001-01-01T00:00:00Z"}, 400, "invalid", "ends_at"),
        (
            {"delegate": "carol", "ends_at": "2099-01-01T00:00:00Z", "cancelled_at": None},
            400,
            "invalid",
            "cancelled_at",
        ),
    ],
)
def test_bad_input_is_a_field_error_and_writes_nothing(bob, carol, body, status_code, code, field):
    error = assert_error(create(bob, body), status_code, code)

    assert list(error["fields"]) == [field]
    assert not Delegation.objects.exists()


def test_a_loop_and_an_overlap_are_refused_with_their_field(bob, carol):
    ends_at = (timezone.now() + timedelta(days=3)).isoformat()
    services.delegation_create(
        delegator=bob, delegate=carol, starts_at=timezone.now(), ends_at=timezone.now() + timedelta(days=3)
    )

    loop = assert_error(create(carol, {"delegate": "bob", "ends_at": ends_at}), 400, "loop")
    overlap = assert_error(create(bob, {"delegate": UserFactory().username, "ends_at": ends_at}), 400, "overlap")

    assert loop["fields"] == {
        "delegate": ["That would make a loop of delegations in this period (carol → bob → carol)."]
    }
    assert list(overlap["fields"]) == ["starts_at"]
    assert Delegation.objects.count() == 1


def test_someone_elses_delegation_is_not_found_and_stays(bob, carol):
    delegation = services.delegation_create(
        delegator=bob, delegate=carol, starts_at=timezone.now(), ends_at=timezone.now() + timedelta(days=3)
    )

    assert_error(client_for(carol).delete(f"{URL}{delegation.pk}/"), 404, "not_found")

    delegation.refresh_from_db()
    assert delegation.cancelled_at is None


def test_a_delegate_sees_the_task_on_behalf_of_and_the_decision_says_so(requester, department, bob, carol):
    services.delegation_create(
        delegator=bob, delegate=carol, starts_at=timezone.now(), ends_at=timezone.now() + timedelta(days=3)
    )
    document = services.document_create(requester=requester, department=department, title="Budget", approvers=[bob])
    services.document_submit(document=document, submitted_by=requester)

    [task] = client_for(carol).get("/api/tasks/").json()["results"]
    approved = client_for(carol).post(f"/api/documents/{document.pk}/approve/", {}, format="json")

    assert task["on_behalf_of"] == {"id": bob.pk, "username": "bob", "name": "Bob Baker"}
    assert approved.status_code == 200, approved.content
    [step] = approved.json()["steps"]
    assert (step["decided_by"]["username"], step["decided_on_behalf_of"]["username"]) == ("carol", "bob")
