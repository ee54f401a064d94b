"""Document rooms: permission-checked subscribe, presence join/leave, rate-limited typing (real daphne + Redis)."""

import pytest

from notifications import presence
from notifications.services import notification_publish
from tests.support.factories import DepartmentFactory, UserFactory, add_members
from tests.support.hub_client import NativeClient, until_notification
from tests.support.waiting import eventually
from workflow import services as workflow

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def outside_approver():
    return UserFactory()


@pytest.fixture
def document(requester, department, approvers, outside_approver):
    return workflow.document_create(
        requester=requester, department=department, title="Q3", approvers=[*approvers, outside_approver]
    )


def frames_before_sentinel(user, *clients: NativeClient) -> list[dict]:
    """Frames the clients got before a notification published now to `user` (the layer keeps them in order)."""
    sentinel = notification_publish(event="Sentinel", title="-", user_ids=[user.pk])
    return [frame for client in clients for frame in client.frames_until(until_notification(sentinel.pk))[:-1]]


def member(user) -> dict:
    return {"id": user.pk, "username": user.username}


def test_requester_approvers_and_department_members_may_follow_a_document(
    connect, document, requester, approvers, outside_approver, department
):
    colleague = UserFactory()
    add_members(department, colleague)

    for user in (requester, approvers[0], outside_approver, colleague):
        reply = connect(user).request("subscribed", type="subscribe", document_id=document.pk)
        assert reply["type"] == "subscribed", (user, reply)
        assert reply["document_id"] == document.pk
        assert member(user) in reply["members"]


@pytest.mark.parametrize("which", ["someone elses", "missing"])
def test_documents_one_may_not_see_are_forbidden(connect, document, which):
    outsider = UserFactory()
    add_members(DepartmentFactory(), outsider)
    document_id = document.pk if which == "someone elses" else document.pk + 1000

    reply = connect(outsider).request("subscribed", type="subscribe", document_id=document_id)

    assert reply["type"] == "error"
    assert (reply["code"], reply["request"]) == ("forbidden", "subscribe")


def test_refused_subscriber_hears_nothing_from_the_room(connect, document, requester):
    outsider = UserFactory()
    inside, outside = connect(requester), connect(outsider)
    inside.request("subscribed", type="subscribe", document_id=document.pk)
    outside.request("subscribed", type="subscribe", document_id=document.pk)

    inside.send(type="typing", document_id=document.pk)

    assert frames_before_sentinel(outsider, outside) == []


def test_members_see_each_other_join_and_leave(connect, document, requester, approvers):
    requester_client, approver_client = connect(requester), connect(approvers[0])
    requester_client.request("subscribed", type="subscribe", document_id=document.pk)

    joined = approver_client.request("subscribed", type="subscribe", document_id=document.pk)
    assert sorted(joined["members"], key=lambda user: user["id"]) == sorted(
        [member(requester), member(approvers[0])], key=lambda user: user["id"]
    )
    assert requester_client.recv() == {
        "type": "presence",
        "document_id": document.pk,
        "user": member(approvers[0]),
        "state": "join",
    }

    assert approver_client.request("unsubscribed", type="unsubscribe", document_id=document.pk) == {
        "type": "unsubscribed",
        "document_id": document.pk,
    }
    assert requester_client.recv() == {
        "type": "presence",
        "document_id": document.pk,
        "user": member(approvers[0]),
        "state": "leave",
    }


def test_leave_is_announced_when_the_users_last_connection_goes(connect, document, requester, approvers, redis_client):
    watcher = connect(requester)
    watcher.request("subscribed", type="subscribe", document_id=document.pk)
    tab_one, tab_two = connect(approvers[0]), connect(approvers[0])
    for tab in (tab_one, tab_two):
        tab.request("subscribed", type="subscribe", document_id=document.pk)
    assert [frame["state"] for frame in watcher.frames_until(lambda f: f["type"] == "presence")] == ["join"]
    assert [frame["state"] for frame in watcher.frames_until(lambda f: f["type"] == "presence")] == ["join"]

    tab_one.close()
    # Once the server has taken tab one out of the room, anything it announced would precede the sentinel.
    assert eventually(lambda: redis_client.zcard(presence.room_key(document.pk)) == 2)
    assert frames_before_sentinel(requester, watcher) == []

    tab_two.close()
    assert watcher.recv() == {
        "type": "presence",
        "document_id": document.pk,
        "user": member(approvers[0]),
        "state": "leave",
    }


def test_typing_reaches_the_other_members_but_not_the_typist(connect, document, requester, approvers):
    typist, other_tab, listener = connect(approvers[0]), connect(approvers[0]), connect(requester)
    for client in (typist, other_tab, listener):
        client.request("subscribed", type="subscribe", document_id=document.pk)
    for client in (typist, other_tab):
        assert client.recv()["user"] == member(requester)  # the listener joining

    typist.send(type="typing", document_id=document.pk)

    assert listener.recv() == {"type": "typing", "document_id": document.pk, "user": member(approvers[0])}
    assert frames_before_sentinel(approvers[0], typist, other_tab) == []


def test_typing_is_rate_limited_per_document(connect, document, requester):
    client = connect(requester)
    client.request("subscribed", type="subscribe", document_id=document.pk)

    client.send(type="typing", document_id=document.pk)
    reply = client.request("error", type="typing", document_id=document.pk)

    assert (reply["code"], reply["request"]) == ("rate_limited", "typing")


def test_typing_and_unsubscribe_need_a_subscription(connect, document, requester):
    client = connect(requester)

    for request_type in ("typing", "unsubscribe"):
        reply = client.request("error", type=request_type, document_id=document.pk)
        assert reply["code"] == "not_subscribed"


@pytest.mark.parametrize("document_id", ["1", 0, -4, 1.5, True, [1], {"id": 1}])
def test_document_id_must_be_a_positive_integer(connect, requester, document_id):
    reply = connect(requester).request("subscribed", type="subscribe", document_id=document_id)

    assert (reply["type"], reply["code"]) == ("error", "invalid")
