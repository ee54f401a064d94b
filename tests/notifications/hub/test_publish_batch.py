"""Batch publish end to end: POST /api/notifications/batch/ to a real daphne, to clients on both protocols."""

import pytest

from notifications.models import Delivery
from tests.support.api import make_publisher
from tests.support.factories import DepartmentFactory, UserFactory, add_members
from tests.support.hub_client import access_token, until_notification
from tests.support.servers import post_json
from tests.support.signalr_client import targeting

pytestmark = pytest.mark.django_db(transaction=True)


def test_each_published_item_reaches_its_recipients_live_and_a_refused_one_nobody(hub_server, devices, connect):
    ada, bob = UserFactory(), UserFactory()
    add_members(DepartmentFactory(code="finance"), ada, bob)
    native, signalr = devices(ada)
    bobs = connect(bob)

    response = post_json(
        hub_server,
        "/api/notifications/batch/",
        {
            "notifications": [
                {"event": "InvoiceOverdue", "title": "To ada", "recipients": {"users": [ada.username]}},
                {"event": "InvoiceOverdue", "title": "Nobody", "recipients": {"users": ["ghost"]}},
                {"event": "InvoicePaid", "title": "To finance", "recipients": {"departments": ["finance"]}},
            ]
        },
        token=access_token(make_publisher()),
    )

    assert response.status == 200, response.body
    results = response.body["results"]
    assert [result["status"] for result in results] == [201, 400, 201]
    to_ada, to_finance = results[0]["notification"]["id"], results[2]["notification"]["id"]
    frames = native.frames_until(until_notification(to_finance))
    assert [(frame["id"], frame["title"]) for frame in frames if frame["type"] == "notification"] == [
        (to_ada, "To ada"),
        (to_finance, "To finance"),
    ]
    assert signalr.next_message(targeting("InvoiceOverdue", to_ada))["arguments"][0]["title"] == "To ada"
    assert signalr.next_message(targeting("InvoicePaid", to_finance))["arguments"][0]["title"] == "To finance"
    bobs_frames = bobs.frames_until(until_notification(to_finance))
    assert [frame["id"] for frame in bobs_frames if frame["type"] == "notification"] == [to_finance]
    # Written `sent`: they were online when the batch was published.
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SENT}
    assert Delivery.objects.count() == 3
