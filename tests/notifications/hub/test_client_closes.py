"""A client that closes while the hub is still answering it: its connection ends all the same, on every server.

uvicorn refuses a frame sent after the client's close (daphne drops it): the reply to a command sent just
before the close used to end the consumer before its `disconnect`, and the connection stayed in presence.
"""

import pytest

from notifications import presence
from notifications.services import notification_publish
from tests.support.factories import UserFactory
from tests.support.hub_client import NativeClient, access_token
from tests.support.waiting import eventually

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("command", ["read", "read_all", "ping", "no_such_command"])
def test_a_client_closing_right_after_a_command_leaves_presence(each_server, command):
    user = UserFactory()
    notification = notification_publish(event="InvoiceDue", title="Invoice 7", user_ids=[user.pk])
    with NativeClient.connect(each_server, token=access_token(user)) as native:
        native.start()
        assert presence.lookup([user.pk]).connection_counts == {user.pk: 1}
        native.send(type=command, id=str(notification.pk))  # no wait for the answer: the client is leaving

    assert eventually(lambda: presence.lookup([user.pk]).connection_counts == {}, timeout=10)
