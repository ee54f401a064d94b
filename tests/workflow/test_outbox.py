"""The transactional outbox: notifications commit with the workflow change, and leave the process only after."""

import asyncio

import pytest
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers
from django.db import transaction

from notifications import layer, layer_messages, presence, receivers
from notifications.models import Delivery, Notification
from workflow import services, signals
from workflow.models import Document, Task

pytestmark = pytest.mark.django_db(transaction=True)


class Boom(Exception):
    pass


class GroupListener:
    """A channel in one user's group, read from its own event loop (a layer's buffers are bound to one loop)."""

    def __init__(self, user_id: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        self.channel = self.loop.run_until_complete(self.layer.new_channel())
        self.loop.run_until_complete(self.layer.group_add(layer.user_group(user_id), self.channel))
        # Dispatch sends only to users the presence registry shows online.
        self.loop.run_until_complete(presence.connection_alive(user_id, self.channel))

    def receive(self, timeout: float) -> dict | None:
        try:
            return self.loop.run_until_complete(asyncio.wait_for(self.layer.receive(self.channel), timeout))
        except TimeoutError:
            return None

    def close(self) -> None:
        self.loop.run_until_complete(self.layer.flush())
        self.loop.close()


@pytest.fixture
def listen(redis_client):
    listeners = []

    def start(user_id: int) -> GroupListener:
        listeners.append(GroupListener(user_id))
        return listeners[-1]

    yield start
    for listener in listeners:
        listener.close()


def test_rollback_after_the_service_leaves_no_approval_and_no_notification(requester, department, approvers, listen):
    document = services.document_create(requester=requester, department=department, title="T", approvers=approvers)
    listener = listen(approvers[0].pk)

    with pytest.raises(Boom), transaction.atomic():
        services.document_submit(document=document, submitted_by=requester)
        raise Boom

    document.refresh_from_db()
    assert document.status == Document.Status.DRAFT
    assert not Task.objects.exists()
    assert not Notification.objects.exists()
    assert not Delivery.objects.exists()
    assert listener.receive(timeout=0.5) is None


def test_failing_receiver_rolls_back_the_workflow_change(requester, department, approvers):
    """No approval without its notification: a receiver error undoes the transition."""
    document = services.document_create(requester=requester, department=department, title="T", approvers=approvers)
    services.document_submit(document=document, submitted_by=requester)

    def explode(sender, **kwargs):
        raise Boom

    signals.step_approved.connect(explode, dispatch_uid="test.explode")
    try:
        with pytest.raises(Boom):
            services.step_approve(document=document, approver=approvers[0])
    finally:
        signals.step_approved.disconnect(dispatch_uid="test.explode")

    document.refresh_from_db()
    assert document.steps.get(order=1).status == "pending"
    assert not Notification.objects.filter(event="DocumentApproved").exists()
    assert Task.objects.get().status == Task.Status.OPEN


def test_channel_layer_send_waits_for_commit(requester, department, approvers, listen):
    document = services.document_create(requester=requester, department=department, title="T", approvers=approvers)
    listener = listen(approvers[0].pk)

    with transaction.atomic():
        services.document_submit(document=document, submitted_by=requester)
        # Inside the transaction nothing has left the process yet.
        assert listener.receive(timeout=0.3) is None

    message = listener.receive(timeout=2)
    notification = Notification.objects.get(event="NewTask")
    assert message is not None
    assert message["type"] == layer_messages.NOTIFICATION_CREATED
    assert message["notification"]["id"] == str(notification.pk)
    assert message["notification"]["event"] == "NewTask"
    assert message["notification"]["document_id"] == document.pk
    assert message["notification"]["data"]["documentId"] == document.pk


def test_receivers_are_connected_once(requester, department, approvers):
    receivers.connect()  # a second call (e.g. ready() twice) must not double the notifications
    document = services.document_create(requester=requester, department=department, title="T", approvers=approvers)
    services.document_submit(document=document, submitted_by=requester)
    assert Notification.objects.filter(event="NewTask").count() == 1
