"""The settings page without JavaScript: a plain form POST saves the same settings as /api/me/preferences/, and a
refusal is shown beside its field with nothing saved."""

from datetime import time

import pytest

from notifications.models import EventPreference, EventTypePolicy, UserPreferences
from tests.support.factories import UserFactory

URL = "/settings/"


@pytest.fixture
def ada(db):
    EventTypePolicy.objects.create(event="InvoiceOverdue", description="An invoice is overdue")
    EventTypePolicy.objects.create(event="Digest", default_muted=True)
    return UserFactory(username="ada")


def form_post(**overrides) -> dict:
    return {
        "time_zone": "Europe/Berlin",
        "quiet_hours_start": "22:00",
        "quiet_hours_end": "07:00",
        "push_enabled": "on",
        "push:InvoiceOverdue": "off",
        "muted:InvoiceOverdue": "",
        "push:Digest": "",
        "muted:Digest": "shown",
        **overrides,
    }


def test_the_page_shows_the_settings_and_mandatory_event_types_have_no_choice(ada, client_for):
    response = client_for(ada).get(URL)

    assert response.status_code == 200
    page = response.content.decode()
    assert 'aria-current="page">Settings</a>' in page
    assert 'name="push:InvoiceOverdue"' in page and 'name="muted:Digest"' in page
    assert 'name="push:NewTask"' not in page and "Mandatory" in page
    assert "An invoice is overdue" in page


def test_a_plain_post_saves_and_redirects_back_with_a_message(ada, client_for):
    client = client_for(ada)
    response = client.post(URL, form_post())

    assert (response.status_code, response["Location"]) == (302, URL)
    stored = UserPreferences.objects.get(user=ada)
    assert (stored.time_zone, stored.quiet_hours_start, stored.quiet_hours_end) == ("Europe/Berlin", time(22), time(7))
    assert (stored.push_enabled, stored.urgent_breaks_through) == (True, False)
    assert sorted(EventPreference.objects.filter(user=ada).values_list("event", "push", "muted")) == [
        ("Digest", None, False),
        ("InvoiceOverdue", False, None),
    ]
    assert "Settings saved." in client.get(URL).content.decode()


def test_a_refusal_is_shown_beside_its_field_and_nothing_is_saved(ada, client_for):
    response = client_for(ada).post(URL, form_post(quiet_hours_end=""))

    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_quiet_hours_end_error"' in page and "Quiet hours need a start and an end" in page
    assert not UserPreferences.objects.filter(user=ada).exists()
    assert not EventPreference.objects.filter(user=ada).exists()


def test_an_unknown_time_zone_is_refused_by_the_form(ada, client_for):
    response = client_for(ada).post(URL, form_post(time_zone="Mars/Olympus"))
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not UserPreferences.objects.filter(user=ada).exists()


def test_signed_out_the_page_asks_to_sign_in(db, client):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/sign-in/")
