"""What the pages do reaches the user's sockets, as the page scripts rely on: a read made on the page (no
JavaScript) syncs every socket of the user, and a decision made on the page reaches the requester live."""

import pytest

from notifications.services import notification_publish

pytestmark = pytest.mark.django_db(transaction=True)


def test_marking_read_on_the_page_tells_every_connect_the_user(client_for, connect, requester):
    notification = notification_publish(event="Ping", title="Hello", user_ids=[requester.pk])
    socket = connect(requester)

    client_for(requester).post(f"/inbox/{notification.pk}/read/")

    frames = socket.frames_until(lambda frame: frame["type"] == "unread_count")
    assert {"type": "read", "id": str(notification.pk)} in frames
    assert frames[-1]["count"] == 0


def test_marking_all_read_on_the_page_tells_every_socket(client_for, connect, requester):
    for number in range(2):
        notification_publish(event="Ping", title=f"Hello {number}", user_ids=[requester.pk])
    socket = connect(requester)

    client_for(requester).post("/inbox/read-all/")

    frames = socket.frames_until(lambda frame: frame["type"] == "unread_count")
    assert sum(frame["type"] == "read" for frame in frames) == 2
    assert frames[-1]["count"] == 0


def test_an_approval_on_the_page_reaches_the_requesters_socket(client_for, connect, in_review, requester, approvers):
    socket = connect(requester)

    client_for(approvers[0]).post(f"/documents/{in_review.pk}/approve/", {"comment": "Go ahead."})

    [approved] = [
        frame
        for frame in socket.frames_until(lambda frame: frame.get("event") == "DocumentApproved")
        if frame.get("event") == "DocumentApproved"
    ]
    assert approved["document_id"] == in_review.pk  # what the document page script refreshes on
    assert approved["data"]["comment"] == "Go ahead."
