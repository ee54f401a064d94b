"""/api/me/preferences/: the settings in force, replaced (PUT) or changed (PATCH); bad input is a 400 with field
errors and changes nothing."""

from datetime import time

import pytest

from notifications.models import EventPreference, EventTypePolicy, UserPreferences
from tests.support.api import assert_error, client_for
from tests.support.factories import UserFactory

URL = "/api/me/preferences/"


@pytest.fixture
def ada(db):
    EventTypePolicy.objects.create(event="InvoiceOverdue", description="An invoice is overdue")
    EventTypePolicy.objects.create(event="Digest", default_push=False, default_muted=True)
    EventTypePolicy.objects.create(event="Alarm", mandatory=True)
    return UserFactory(username="ada")


def event(body: dict, name: str) -> dict:
    return next(item for item in body["events"] if item["event"] == name)


def test_a_user_who_never_chose_gets_the_defaults_and_every_known_event_type(ada, settings):
    response = client_for(ada).get(URL)

    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in body if key != "events"} == {
        "time_zone": settings.TIME_ZONE,
        "quiet_hours_start": None,
        "quiet_hours_end": None,
        "urgent_breaks_through": False,
        "push_enabled": True,
    }
    # The workflow's events first (always mandatory), then the organisation's, by name.
    assert [item["event"] for item in body["events"]] == [
        "DocumentApproved",
        "DocumentRejected",
        "NewTask",
        "TaskDelegated",
        "TaskEscalated",
        "TaskReminder",
        "Alarm",
        "Digest",
        "InvoiceOverdue",
    ]
    assert event(body, "NewTask")["mandatory"] is True
    assert event(body, "Digest") == {
        "event": "Digest",
        "description": "",
        "mandatory": False,
        "push": False,
        "muted": True,
        "custom": False,
        "default": {"push": False, "muted": True},
    }


def test_put_replaces_everything_and_resets_event_types_it_does_not_list(ada):
    EventPreference.objects.create(user=ada, event="InvoiceOverdue", push=False)
    response = client_for(ada).put(
        URL,
        {
            "time_zone": "Europe/Berlin",
            "quiet_hours_start": "22:00",
            "quiet_hours_end": "07:00",
            "urgent_breaks_through": True,
            "push_enabled": True,
            "events": [{"event": "Digest", "muted": False, "push": True}],
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["time_zone"], body["quiet_hours_start"], body["quiet_hours_end"]) == (
        "Europe/Berlin",
        "22:00",
        "07:00",
    )
    assert (event(body, "Digest")["push"], event(body, "Digest")["muted"], event(body, "Digest")["custom"]) == (
        True,
        False,
        True,
    )
    assert event(body, "InvoiceOverdue")["custom"] is False  # not listed: back to the default
    stored = UserPreferences.objects.get(user=ada)
    assert (stored.quiet_hours_start, stored.quiet_hours_end) == (time(22), time(7))
    assert list(EventPreference.objects.filter(user=ada).values_list("event", "push", "muted")) == [
        ("Digest", True, False)
    ]
    assert client_for(ada).get(URL).json() == body


def test_patch_changes_only_what_it_names_and_null_goes_back_to_the_default(ada):
    client = client_for(ada)
    client.patch(URL, {"events": [{"event": "InvoiceOverdue", "push": False, "muted": True}]}, format="json")

    response = client.patch(
        URL, {"push_enabled": False, "events": [{"event": "InvoiceOverdue", "muted": None}]}, format="json"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["push_enabled"] is False
    assert body["time_zone"] == "UTC"
    # push kept (left out), muted reset to the default (null).
    assert list(EventPreference.objects.filter(user=ada).values_list("push", "muted")) == [(False, None)]
    assert (event(body, "InvoiceOverdue")["push"], event(body, "InvoiceOverdue")["muted"]) == (False, False)


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone", "not a known time zone"),
        ({"time_zone": "europe/berlin "}, "time_zone", "not a known time zone"),
        ({"quiet_hours_start": "22:00"}, "quiet_hours_end", "need a start and an end"),
        ({"quiet_hours_start": "22:00", "quiet_hours_end": "22:00"}, "quiet_hours_end", "must differ"),
        ({"quiet_hours_start": "25:00", "quiet_hours_end": "07:00"}, "quiet_hours_start", "Time has wrong format"),
        ({"events": [{"event": "Alarm", "muted": True}]}, "events.0.muted", "Alarm is mandatory: it cannot be muted"),
        ({"events": [{"event": "NewTask", "push": False}]}, "events.0.push", "NewTask is mandatory: its push"),
        ({"events": [{"event": "Nonsense", "muted": True}]}, "events.0.event", "Unknown event type 'Nonsense'"),
        ({"events": [{"muted": True}]}, "events.0.event", "This field is required"),
        ({"events": [{"event": "Digest", "loud": True}]}, "events.0.loud", "Unknown field"),
        ({"colour": "red"}, "colour", "Unknown field"),
        ({"push_enabled": "maybe"}, "push_enabled", "Must be a valid boolean"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(ada, payload, field, message):
    UserPreferences.objects.create(user=ada, time_zone="Europe/Paris")
    before = client_for(ada).get(URL).json()

    body = assert_error(client_for(ada).patch(URL, payload, format="json"), 400, "invalid")

    assert any(message in text for text in body["fields"][field]), body
    assert client_for(ada).get(URL).json() == before
    assert not EventPreference.objects.filter(user=ada).exists()


def test_put_needs_every_field(ada):
    body = assert_error(client_for(ada).put(URL, {"time_zone": "UTC"}, format="json"), 400, "invalid")
    assert set(body["fields"]) == {
        "quiet_hours_start",
        "quiet_hours_end",
        "urgent_breaks_through",
        "push_enabled",
        "events",
    }
    assert not UserPreferences.objects.filter(user=ada).exists()


def test_only_a_signed_in_user_has_preferences(db):
    assert_error(client_for().get(URL), 401, "not_authenticated")


def test_a_choice_made_once_for_an_event_type_no_longer_listed_can_still_be_undone(ada):
    EventPreference.objects.create(user=ada, event="Retired", muted=True)
    body = client_for(ada).get(URL).json()
    assert event(body, "Retired")["muted"] is True
    response = client_for(ada).patch(URL, {"events": [{"event": "Retired", "muted": None}]}, format="json")
    assert response.status_code == 200, response.content
    assert "Retired" not in [item["event"] for item in response.json()["events"]]
