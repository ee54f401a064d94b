"""The inbox page: reading order, cursor paging, filters, marking read without JavaScript, and bad input."""

import base64
import re
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import Delivery, Notification
from notifications.selectors import InboxPosition
from notifications.services import delivery_mark_read, notification_publish
from tests.support.factories import UserFactory
from web.cursors import OLDER, encode_cursor
from web.views.inbox import PAGE_SIZE

pytestmark = pytest.mark.django_db

ITEM = re.compile(r'<li class="item( unread)?" data-id="([0-9a-f-]{36})"')


def items(response) -> list[tuple[str, bool]]:
    """(notification id, unread) of each item on the page, in order."""
    assert response.status_code == 200
    return [(found.group(2), bool(found.group(1))) for found in ITEM.finditer(response.content.decode())]


def link(response, rel: str) -> str | None:
    found = re.search(rf'<a class="button" href="([^"]+)" rel="{rel}">', response.content.decode())
    return found.group(1).replace("&amp;", "&") if found else None


def publish(user, count: int, *, event: str = "Ping", **fields) -> list[str]:
    return [
        str(notification_publish(event=event, title=f"{event} {number}", user_ids=[user.pk], **fields).pk)
        for number in range(count)
    ]


def reading_order(user, **filters) -> list[str]:
    """What the inbox must show, from the rows: unread first, then newest first (ties by delivery id)."""
    deliveries = Delivery.objects.filter(recipient=user, **filters)
    ordered = sorted(deliveries, key=lambda d: (d.read_at is not None, -d.created_at.timestamp(), -d.pk))
    return [str(delivery.notification_id) for delivery in ordered]


@pytest.fixture
def user():
    return UserFactory()


@pytest.fixture
def client(client_for, user):
    return client_for(user)


def test_unread_come_first_then_the_newest(client, user):
    ids = publish(user, 4)
    delivery_mark_read(user_id=user.pk, notification_id=ids[3])  # the newest, but read
    publish(UserFactory(), 2)  # someone else's

    shown = items(client.get("/inbox/"))

    assert [notification_id for notification_id, _ in shown] == [ids[2], ids[1], ids[0], ids[3]]
    assert [unread for _, unread in shown] == [True, True, True, False]


def test_an_item_shows_what_it_is_about(client, user):
    [plain] = publish(user, 1, body="Pay by Friday.")
    Delivery.objects.filter(notification_id=plain).update(created_at=timezone.now() - timedelta(hours=3))

    page = client.get("/inbox/").content.decode()

    assert "Pay by Friday." in page
    assert "3 hours ago" in page
    assert '<time datetime="' in page and " UTC</span></time>" in page
    assert '<span class="pill pill-unread">Unread</span>' in page
    assert page.count(">Mark as read</button>") == 2  # the item's, and the template's for live arrivals
    assert '<button type="submit" class="button">Mark all as read</button>' in page
    assert "1 unread" in page


def test_a_notification_about_a_document_links_to_it(client_for, in_review, approvers):
    page = client_for(approvers[0]).get("/inbox/").content.decode()
    assert "New task assigned" in page
    assert "New task</span>" in page  # the event in words
    assert f'<a class="item-link" href="/documents/{in_review.pk}/">Open document</a>' in page


def test_read_items_have_no_unread_marker_nor_button(client, user):
    [notification_id] = publish(user, 1)
    delivery_mark_read(user_id=user.pk, notification_id=notification_id)

    page = client.get("/inbox/").content.decode()

    assert items(client.get("/inbox/")) == [(notification_id, False)]
    assert '<span class="pill pill-unread">Unread</span>\n' not in page.split('<template id="inbox-item-template">')[0]
    assert f"/inbox/{notification_id}/read/" not in page
    assert "All read" in page


def test_older_and_newer_links_walk_every_notification_once_in_order(client, user):
    ids = publish(user, 2 * PAGE_SIZE + 5)
    for notification_id in ids[::7]:
        delivery_mark_read(user_id=user.pk, notification_id=notification_id)
    expected = reading_order(user)

    pages, response = [], client.get("/inbox/")
    assert link(response, "prev") is None
    while True:
        pages.append(items(response))
        older = link(response, "next")
        if older is None:
            break
        response = client.get(older)

    assert [len(page) for page in pages] == [PAGE_SIZE, PAGE_SIZE, 5]
    assert [notification_id for page in pages for notification_id, _ in page] == expected

    back = client.get(link(response, "prev"))
    assert items(back) == pages[1]
    assert items(client.get(link(back, "prev"))) == pages[0]


def test_the_event_filter_offers_my_event_names_only_and_filters(client, user):
    publish(user, 2, event="InvoiceOverdue")
    pings = publish(user, 3, event="Ping")
    publish(UserFactory(), 1, event="SomeoneElses")

    response = client.get("/inbox/?event=Ping")

    page = response.content.decode()
    assert '<label for="id_event">Event</label>' in page
    assert '<option value="InvoiceOverdue">Invoice overdue</option>' in page
    assert '<option value="Ping" selected>Ping</option>' in page
    assert "SomeoneElses" not in page
    assert [notification_id for notification_id, _ in items(response)] == pings[::-1]


def test_unread_only(client, user):
    ids = publish(user, 3)
    delivery_mark_read(user_id=user.pk, notification_id=ids[1])

    response = client.get("/inbox/?unread=on")

    assert '<label for="id_unread">Unread only</label>' in response.content.decode()
    assert [notification_id for notification_id, _ in items(response)] == [ids[2], ids[0]]


def test_paging_keeps_the_filters(client, user):
    pings = publish(user, PAGE_SIZE + 3, event="Ping")
    publish(user, 5, event="Other")

    first = client.get("/inbox/?event=Ping&unread=on")
    older = link(first, "next")

    assert "event=Ping" in older and "unread=on" in older
    assert [notification_id for notification_id, _ in items(client.get(older))] == pings[:3][::-1]


def test_expired_notifications_are_left_out(client, user):
    [kept] = publish(user, 1)
    [gone] = publish(user, 1, expires_at=timezone.now() + timedelta(seconds=30))
    Notification.objects.filter(pk=gone).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert [notification_id for notification_id, _ in items(client.get("/inbox/"))] == [kept]


def test_an_empty_inbox_says_so(client):
    page = client.get("/inbox/").content.decode()
    assert "Nothing here yet." in page
    assert '<ul id="inbox-list" class="inbox-list" data-first-page="true">' in page


@pytest.mark.parametrize(
    "query",
    [
        "cursor=garbage",
        "cursor=%00%ff",
        "cursor=" + "A" * 300,
        "cursor=" + base64.urlsafe_b64encode(b"o|2|yesterday|-1").decode(),  # decodes, but is no position
        "event=NotMine&unread=maybe",
        "event=" + "x" * 5000,
        "cursor=" + encode_cursor(OLDER, InboxPosition(read=False, created_at=timezone.now(), delivery_id=10**30)),
    ],
)
def test_bad_query_strings_show_the_first_page(client, user, query):
    ids = publish(user, 2)
    assert [notification_id for notification_id, _ in items(client.get(f"/inbox/?{query}"))] == ids[::-1]


def test_mark_as_read_without_javascript(client, user):
    ids = publish(user, 2)

    response = client.post(f"/inbox/{ids[0]}/read/", {"next": "/inbox/?event=Ping"}, follow=True)

    assert response.redirect_chain == [("/inbox/?event=Ping", 302)]
    assert "Marked as read." in response.content.decode()
    assert Delivery.objects.get(notification_id=ids[0]).read_at is not None
    assert Delivery.objects.get(notification_id=ids[1]).read_at is None


def test_mark_all_as_read_without_javascript(client, user):
    publish(user, 3)

    response = client.post("/inbox/read-all/", {"next": "/inbox/"}, follow=True)

    assert "Marked 3 notifications as read." in response.content.decode()
    assert not Delivery.objects.filter(recipient=user, read_at__isnull=True).exists()
    assert "Nothing was unread." in client.post("/inbox/read-all/", follow=True).content.decode()


@pytest.mark.parametrize("notification_id", ["not-a-uuid", str(uuid.uuid4()), "%20", "1" * 500])
def test_marking_what_is_not_mine_says_so_and_changes_nothing(client, user, notification_id):
    response = client.post(f"/inbox/{notification_id}/read/", follow=True)
    assert response.status_code == 200
    assert "That notification is not in your inbox." in response.content.decode()


def test_someone_elses_notification_stays_unread(client):
    other = UserFactory()
    [theirs] = publish(other, 1)

    response = client.post(f"/inbox/{theirs}/read/", follow=True)

    assert "That notification is not in your inbox." in response.content.decode()
    assert Delivery.objects.get(notification_id=theirs).read_at is None


def test_marking_read_goes_back_only_to_our_own_pages(client, user):
    [notification_id] = publish(user, 1)
    response = client.post(f"/inbox/{notification_id}/read/", {"next": "https://evil.example.com/"})
    assert response["Location"] == "/inbox/"


def test_marking_read_is_a_post_with_the_csrf_token(client_for, user):
    [notification_id] = publish(user, 1)
    client = client_for(user, enforce_csrf_checks=True)

    assert client.get(f"/inbox/{notification_id}/read/").status_code == 405
    assert client.post(f"/inbox/{notification_id}/read/").status_code == 403
    assert client.post("/inbox/read-all/").status_code == 403
    assert Delivery.objects.get(notification_id=notification_id).read_at is None
