"""The inbox page shows a resolved notification as done: not unread, no "Mark as read", after the unread ones."""

import re

import pytest

from notifications.services import notification_publish, notifications_resolve
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db

ITEM = re.compile(r'<li class="item( unread)?( resolved)?" data-id="([0-9a-f-]{36})"')


def test_a_resolved_notification_shows_as_done_after_the_unread_ones(client_for):
    user = UserFactory()
    resolved = notification_publish(event="NewTask", title="Approve Q3", user_ids=[user.pk], subject="task:7")
    unread = notification_publish(event="Ping", title="Still to do", user_ids=[user.pk])
    notifications_resolve(subject="task:7", resolution="done")

    response = client_for(user).get("/inbox/")

    assert response.status_code == 200
    page = response.content.decode()
    found = [(match.group(3), bool(match.group(1)), bool(match.group(2))) for match in ITEM.finditer(page)]
    assert found == [(str(unread.pk), True, False), (str(resolved.pk), False, True)]
    item = page[page.index(f'data-id="{resolved.pk}"') :].split("</li>", 1)[0]
    assert '<span class="pill pill-done" title="Done: the task was decided">Done</span>' in item
    assert "Mark as read" not in item and "pill-unread" not in item
    assert "1 unread" in page
