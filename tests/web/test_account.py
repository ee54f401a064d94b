"""Signing in and out of the pages, the redirects around it, the shared lockout, the header, and not-found pages."""

import pytest
from django.test import Client

from notifications.services import notification_publish
from tests.support.api import assert_error
from tests.support.factories import TEST_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

PAGES = ["/inbox/", "/tasks/", "/documents/", "/documents/new/"]


@pytest.fixture
def lockout(settings):
    """Three failures lock a username at an address out for a minute."""
    settings.ADMIN_LOGIN_MAX_FAILURES = 3
    settings.ADMIN_LOGIN_COOLOFF = 60


def sign_in(client, username: str, password: str, *, address: str = "10.0.0.1", next_url: str = "/inbox/"):
    return client.post("/sign-in/", {"username": username, "password": password, "next": next_url}, REMOTE_ADDR=address)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_root_sends_strangers_to_sign_in_and_people_to_their_inbox(client, client_for):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/sign-in/?next=%2Finbox%2F"

    assert client_for(UserFactory()).get("/")["Location"] == "/inbox/"


@pytest.mark.parametrize("path", PAGES)
def test_every_page_asks_strangers_to_sign_in_first(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/sign-in/?next={path}"


def test_the_sign_in_page_has_labelled_fields_and_a_sign_in_button(client):
    page = client.get("/sign-in/?next=/tasks/").content.decode()
    assert '<label for="id_username">Username</label>' in page
    assert '<label for="id_password">Password</label>' in page
    assert '<button type="submit" class="button button-primary">Sign in</button>' in page
    assert 'name="next" value="/tasks/"' in page


def test_signing_in_goes_where_next_says(client):
    user = UserFactory()
    response = sign_in(client, user.username, TEST_PASSWORD, next_url="/tasks/")
    assert response.status_code == 302
    assert response["Location"] == "/tasks/"
    assert signed_in(client)


def test_a_next_on_another_site_is_ignored(client):
    user = UserFactory()
    response = sign_in(client, user.username, TEST_PASSWORD, next_url="https://evil.example.com/")
    assert response["Location"] == "/inbox/"


def test_a_wrong_password_shows_the_form_again_with_the_reason(client):
    user = UserFactory()
    response = sign_in(client, user.username, "wrong")
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert not signed_in(client)


def test_inactive_users_cannot_sign_in(client):
    user = UserFactory(is_active=False)
    response = sign_in(client, user.username, TEST_PASSWORD)
    assert response.status_code == 200
    assert not signed_in(client)


def test_signed_in_people_skip_the_sign_in_page(client_for):
    assert client_for(UserFactory()).get("/sign-in/")["Location"] == "/inbox/"


@pytest.mark.usefixtures("lockout")
def test_repeated_failures_lock_the_username_out_even_with_the_right_password(client):
    user = UserFactory()
    for _ in range(3):
        assert sign_in(client, user.username, "wrong").status_code == 200

    refused = sign_in(client, user.username, TEST_PASSWORD)

    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    page = refused.content.decode()
    assert "Too many failed sign-ins for this username from your address. Try again in" in page
    assert 'name="password"' in page
    assert not signed_in(client)
    assert sign_in(client, user.username, TEST_PASSWORD, address="10.0.0.2").status_code == 302  # another address


@pytest.mark.usefixtures("lockout")
def test_the_pages_and_the_admin_count_failures_together(client):
    staff = UserFactory(is_staff=True, is_superuser=True)
    admin_login = {"username": staff.username, "password": "wrong", "next": "/admin/"}
    for _ in range(2):
        assert client.post("/admin/login/?next=/admin/", admin_login, REMOTE_ADDR="10.0.0.1").status_code == 200
    assert sign_in(client, staff.username, "wrong").status_code == 200  # the third failure, on the other page

    assert sign_in(client, staff.username, TEST_PASSWORD).status_code == 429
    admin_login["password"] = TEST_PASSWORD
    assert client.post("/admin/login/?next=/admin/", admin_login, REMOTE_ADDR="10.0.0.1").status_code == 429


@pytest.mark.usefixtures("lockout")
def test_a_successful_sign_in_forgets_the_failures(client):
    user = UserFactory()
    for _ in range(2):
        sign_in(client, user.username, "wrong")
    assert sign_in(client, user.username, TEST_PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):
        sign_in(client, user.username, "wrong")
    assert sign_in(client, user.username, TEST_PASSWORD).status_code == 302


def test_signing_out_is_a_post_that_ends_the_session_and_says_so(client_for):
    client = client_for(UserFactory())
    assert client.get("/sign-out/").status_code == 405

    response = client.post("/sign-out/", follow=True)

    assert response.redirect_chain[0] == ("/sign-in/", 302)
    assert "You have signed out." in response.content.decode()
    assert not signed_in(client)
    assert client.get("/inbox/").status_code == 302


def test_signing_out_needs_the_csrf_token(client_for):
    client = client_for(UserFactory(), enforce_csrf_checks=True)
    assert client.post("/sign-out/").status_code == 403
    assert signed_in(client)


def test_the_header_shows_the_unread_count_the_connection_and_the_user(client_for):
    user = UserFactory(first_name="Erin", last_name="Example")
    for number in range(3):
        notification_publish(event="Ping", title=f"Ping {number}", user_ids=[user.pk])

    page = client_for(user).get("/tasks/").content.decode()

    assert 'aria-label="Notifications, 3 unread"' in page
    assert '<span id="bell-badge" class="badge" aria-hidden="true">3</span>' in page
    assert 'role="status" aria-label="Connection"' in page
    assert ">Connecting…</span>" in page
    assert "Erin Example" in page
    assert 'href="/tasks/" aria-current="page">My tasks</a>' in page
    assert 'href="/inbox/">Inbox</a>' in page
    assert 'id="toasts" class="toasts" aria-live="polite"' in page
    assert '<a class="skip-link" href="#main">' in page
    assert "{% static 'notifyhub/notifyhub.js' %}" not in page
    assert '"notifyhub": "/static/notifyhub/notifyhub.js"' in page  # the import map the page scripts use


def test_the_header_says_no_unread(client_for):
    page = client_for(UserFactory()).get("/inbox/").content.decode()
    assert 'aria-label="Notifications, no unread"' in page
    assert 'class="badge" aria-hidden="true" hidden>' in page


def test_the_admins_view_site_link_leads_to_the_pages(client_for):
    page = client_for(UserFactory(is_staff=True, is_superuser=True)).get("/admin/").content.decode()
    assert '<a href="/">View site</a>' in page


def test_a_missing_page_is_a_page_and_a_missing_api_url_still_json(client_for):
    client = client_for(UserFactory())
    response = client.get("/documents/not-a-number/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert "Back to your inbox" in response.content.decode()

    assert_error(Client().get("/api/nothing-here/"), 404, "not_found")


def test_a_form_from_an_out_of_date_page_says_so(client_for):
    response = client_for(UserFactory(), enforce_csrf_checks=True).post("/inbox/read-all/")
    assert response.status_code == 403
    assert "This page was out of date" in response.content.decode()
    assert "Nothing was changed." in response.content.decode()


def test_the_sign_in_form_of_a_stale_tab_says_so_too():
    response = Client(enforce_csrf_checks=True).post("/sign-in/", {"username": "x", "password": "y"})
    assert response.status_code == 403
    assert "This page was out of date" in response.content.decode()
