"""The document page's Withdraw: offered to the requester while in review, through the workflow service."""

import re

import pytest

from notifications.models import Delivery
from tests.support.factories import UserFactory
from workflow.models import Document, Task

pytestmark = pytest.mark.django_db

WITHDRAW_BUTTON = '<button type="submit" class="button">Withdraw</button>'


def messages_of(response) -> list[str]:
    return re.findall(r'<li class="message message-\w+">([^<]*)</li>', response.content.decode())


def test_the_requester_is_offered_withdraw_and_the_approver_is_not(client_for, in_review, requester, approvers):
    requester_page = client_for(requester).get(f"/documents/{in_review.pk}/").content.decode()
    approver_page = client_for(approvers[0]).get(f"/documents/{in_review.pk}/").content.decode()

    assert WITHDRAW_BUTTON in requester_page
    assert 'data-actions="withdraw"' in requester_page
    assert WITHDRAW_BUTTON not in approver_page


def test_withdrawing_cancels_the_task_and_resolves_the_approvers_notification(client_for, in_review, requester):
    response = client_for(requester).post(f"/documents/{in_review.pk}/withdraw/", follow=True)

    assert response.status_code == 200
    assert messages_of(response) == ["Withdrawn: the approver&#x27;s task is cancelled and gone from their devices."]
    assert WITHDRAW_BUTTON not in response.content.decode()
    in_review.refresh_from_db()
    assert in_review.status == Document.Status.WITHDRAWN
    assert not Task.objects.filter(document=in_review, status=Task.Status.OPEN).exists()
    assert Delivery.objects.get(notification__event="NewTask").status == "resolved"


def test_someone_else_is_told_why_on_the_page_and_nothing_changes(client_for, in_review, approvers):
    response = client_for(approvers[0]).post(f"/documents/{in_review.pk}/withdraw/", follow=True)

    assert response.status_code == 200
    assert messages_of(response) == ["Only the requester can withdraw a document."]
    in_review.refresh_from_db()
    assert in_review.status == Document.Status.IN_REVIEW


def test_a_get_is_refused_and_an_invisible_document_is_404(client_for, in_review, requester):
    assert client_for(requester).get(f"/documents/{in_review.pk}/withdraw/").status_code == 405
    assert client_for(UserFactory()).post(f"/documents/{in_review.pk}/withdraw/").status_code == 404
