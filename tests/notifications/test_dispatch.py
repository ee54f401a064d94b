"""Which group carries a notification to whom: one department send where it reaches every connection.

Each "connection" here is a real channel on the real layer, in the groups a
hub connection would join, registered in presence the way the hub does.
"""

import asyncio
from unittest import mock

import pytest

from notifications import layer, presence
from notifications.services import notification_publish
from tests.support.factories import DepartmentFactory, UserFactory, add_members
from tests.support.layer import LayerListener

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def connect(redis_client):
    """connect(user, *departments) -> a listener in the groups a hub connection of that user would be in."""
    listeners = []

    def open_connection(user, *departments) -> LayerListener:
        department_ids = [department.pk for department in departments]
        listener = LayerListener([layer.user_group(user.pk), *map(layer.department_group, department_ids)])
        asyncio.run(presence.connection_alive(user.pk, listener.channel, department_ids=department_ids))
        listeners.append(listener)
        return listener

    yield open_connection
    for listener in listeners:
        listener.close()


def routes(listener: LayerListener) -> list[list[int] | None]:
    """For each notification message received: the recipients a department send named, or None for a user send."""
    return [message.get("recipient_ids") for message in listener.drain()]


def test_members_whose_every_connection_is_in_the_department_group_share_one_send(connect):
    department = DepartmentFactory()
    alone, two_devices, offline = UserFactory(), UserFactory(), UserFactory()
    add_members(department, alone, two_devices, offline)
    first = connect(alone, department)
    phone, laptop = connect(two_devices, department), connect(two_devices, department)

    notification_publish(event="Ping", title="t", department_ids=[department.pk])

    expected = [[alone.pk, two_devices.pk]]
    assert routes(first) == routes(phone) == routes(laptop) == expected


def test_a_connection_outside_the_department_group_gets_its_own_send(connect):
    department = DepartmentFactory()
    newcomer, member = UserFactory(), UserFactory()
    add_members(department, member)
    old_tab = connect(newcomer)  # connected before joining the department
    add_members(department, newcomer)
    new_tab, member_connection = connect(newcomer, department), connect(member, department)

    notification_publish(event="Ping", title="t", department_ids=[department.pk])

    # The newcomer gets a send of its own (new_tab sees the department send too, which names only member).
    assert routes(old_tab) == [None]
    new_tab_routes = routes(new_tab)
    assert len(new_tab_routes) == 2 and None in new_tab_routes and [member.pk] in new_tab_routes
    assert routes(member_connection) == [[member.pk]]


def test_a_member_of_two_targeted_departments_is_routed_once_and_direct_targets_get_their_own(connect):
    sales, support = DepartmentFactory(), DepartmentFactory()
    both, support_only, direct = UserFactory(), UserFactory(), UserFactory()
    add_members(sales, both)
    add_members(support, both, support_only)
    both_connection = connect(both, sales, support)
    support_connection = connect(support_only, support)
    direct_connection = connect(direct)

    notification_publish(event="Ping", title="t", user_ids=[direct.pk], department_ids=[sales.pk, support.pk])

    # both_connection is in both groups, so it sees every department send: each member is named exactly once.
    named = [user_id for route in routes(both_connection) for user_id in route]
    assert sorted(named) == sorted([both.pk, support_only.pk])
    assert support_only.pk in routes(support_connection)[0]
    assert routes(direct_connection) == [None]


def test_the_rows_of_online_recipients_are_written_sent_not_updated_after_the_send(connect, redis_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notifications.models import Delivery, DeliveryAttempt

    department = DepartmentFactory()
    online, offline = UserFactory(), UserFactory()
    add_members(department, online, offline)
    listener = connect(online, department)

    with CaptureQueriesContext(connection) as queries:
        notification = notification_publish(event="Ping", title="t", department_ids=[department.pk])

    assert routes(listener) == [[online.pk]]
    rows = {row.recipient_id: row for row in Delivery.objects.filter(notification=notification)}
    assert (rows[online.pk].status, rows[online.pk].attempts) == (Delivery.Status.SENT, 1)
    assert rows[offline.pk].status == Delivery.Status.PENDING
    assert list(DeliveryAttempt.objects.filter(delivery=rows[online.pk]).values_list("outcome", flat=True)) == [
        DeliveryAttempt.Outcome.SENT
    ]
    # Written once: no UPDATE of a delivery, whether it went live (written `sent`) or to a push (logged, queued).
    assert not [query["sql"] for query in queries if 'UPDATE "notifications_delivery"' in query["sql"]]


def test_a_client_that_connects_while_the_notification_is_published_still_gets_it_live(connect, redis_client):
    """Presence is read before the rows are written; a client that registers after that read, and whose
    replay runs before the commit (so it cannot see the row), must be found by the look after the commit."""
    from django.db import transaction

    from notifications.models import Delivery
    from tests.support.broker_queue import queued_push_delivery_ids

    user = UserFactory()
    with transaction.atomic():
        notification = notification_publish(event="Ping", title="t", user_ids=[user.pk])  # nobody online yet
        listener = connect(user)  # presence registered now; its replay would not see the uncommitted row

    assert [message["notification"]["id"] for message in listener.drain()] == [str(notification.pk)]
    row = Delivery.objects.get(notification=notification, recipient=user)
    assert (row.status, row.attempts) == (Delivery.Status.SENT, 1)
    assert queued_push_delivery_ids(redis_client) == []


def test_the_first_sends_are_logged_after_the_send_not_in_the_publishing_transaction(connect, redis_client):
    """The commit (and with it every member of a department) does not wait for an attempt row per live recipient:
    dispatch logs those sends once it has made them, one row each."""
    from django.db import transaction

    from notifications.models import Delivery, DeliveryAttempt

    department = DepartmentFactory()
    online, offline = UserFactory(), UserFactory()
    add_members(department, online, offline)
    listener = connect(online, department)

    with transaction.atomic():
        notification = notification_publish(event="Ping", title="t", department_ids=[department.pk])
        logged_before_commit = DeliveryAttempt.objects.filter(delivery__notification=notification).count()
        assert Delivery.objects.get(notification=notification, recipient=online).status == Delivery.Status.SENT

    assert routes(listener) == [[online.pk]]
    assert logged_before_commit == 0
    logged = DeliveryAttempt.objects.filter(delivery__notification=notification)
    assert sorted(logged.values_list("delivery__recipient_id", "outcome")) == sorted(
        [(online.pk, DeliveryAttempt.Outcome.SENT), (offline.pk, DeliveryAttempt.Outcome.NO_CONNECTION)]
    )


def test_a_first_send_log_cut_off_by_a_lost_connection_runs_once_more_without_logging_twice(connect, caplog):
    """PostgreSQL restarts after the publish committed: the log of the first sends runs again on a new connection,
    and logs only sends not logged yet (the lost statement may have committed before its answer was lost)."""
    from notifications.models import DeliveryAttempt
    from notifications.services.deliveries import deliveries_log_first_sends
    from tests.support.commits import kill_this_connection

    user = UserFactory()
    connect(user)
    notification = notification_publish(event="Ping", title="t", user_ids=[user.pk])  # logs its first send
    sends = DeliveryAttempt.objects.filter(delivery__notification=notification, outcome=DeliveryAttempt.Outcome.SENT)
    assert sends.count() == 1

    kill_this_connection()
    deliveries_log_first_sends(notification_id=notification.pk, recipient_ids=[user.pk])

    assert sends.count() == 1  # ran again (the first try died), and found the send logged already
    assert "once more" in caplog.text


def test_a_dispatch_whose_database_goes_away_leaves_its_deliveries_to_the_sweep(caplog):
    """The rows are committed before dispatch runs: a lost connection under its bookkeeping is a warning, not an
    error, and the deliveries it did not get to stay open for the retry sweep."""
    from notifications import dispatch
    from notifications.models import Delivery
    from tests.support.commits import kill_this_connection

    user = UserFactory()
    with mock.patch.object(dispatch, "notification_dispatch"):  # publish without dispatching
        notification = notification_publish(event="Ping", title="t", user_ids=[user.pk])
    kill_this_connection()

    dispatch.notification_dispatch(
        payload=layer.notification_payload(notification),
        recipient_ids=[user.pk],
        online=presence.NOBODY_ONLINE,
    )

    assert "the retry sweep takes over" in caplog.text
    delivery = Delivery.objects.get(notification=notification)
    assert delivery.status == Delivery.Status.PENDING and delivery.next_attempt_at is not None
