"""An inbox item's action buttons without JavaScript: rendered for a task, refused with a message that changes
nothing, and gone once the task is decided."""

import html

import pytest

from notifications.models import ActionPerformance, Notification

pytestmark = pytest.mark.django_db


@pytest.fixture
def task(in_review, approvers) -> Notification:
    return Notification.objects.get(event="NewTask", deliveries__recipient=approvers[0])


def test_a_task_shows_approve_and_reject_with_its_comment_box(client_for, task, approvers):
    page = client_for(approvers[0]).get("/inbox/").content.decode()

    assert f'action="/inbox/{task.pk}/actions/approve/"' in page
    assert f'action="/inbox/{task.pk}/actions/reject/"' in page
    assert f'<label for="comment-{task.pk}-reject">Why? (required)</label>' in page


@pytest.mark.parametrize(
    ("who", "action", "comment", "message"),
    [
        (1, "approve", "", "No notification {id} for you."),
        (0, "archive", "", "No action 'archive' on this notification (it offers: approve, reject)."),
        (0, "reject", "  ", "'reject' needs a comment saying why."),
    ],
)
def test_a_refused_action_says_why_and_changes_nothing(
    client_for, task, approvers, in_review, who, action, comment, message
):
    response = client_for(approvers[who]).post(
        f"/inbox/{task.pk}/actions/{action}/", {"comment": comment, "next": "/inbox/"}, follow=True
    )

    assert response.redirect_chain == [("/inbox/", 302)]
    assert html.escape(message.format(id=task.pk)) in response.content.decode()
    in_review.refresh_from_db()
    assert in_review.status == "in_review"
    assert not ActionPerformance.objects.exists()


def test_approved_the_buttons_are_gone_and_a_repeat_says_it_was_done(client_for, task, approvers, in_review):
    client = client_for(approvers[0])

    response = client.post(f"/inbox/{task.pk}/actions/approve/", {"next": "/inbox/"}, follow=True)

    page = response.content.decode()
    assert "Approved." in page
    assert f"/inbox/{task.pk}/actions/" not in page
    again = client.post(f"/inbox/{task.pk}/actions/approve/", follow=True).content.decode()
    assert "Approved. (You had done it already.)" in again
    assert ActionPerformance.objects.count() == 1
    assert in_review.steps.get(order=1).status == "approved"
