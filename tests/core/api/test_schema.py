"""The OpenAPI schema: generated without warnings, served with its docs, and the API keeps to it.

The schemathesis run sends generated valid and invalid requests for every
operation to a live server and fails on any 5xx, any undocumented status or
content type, and any response body that does not match the schema.
"""

import json

import pytest
import schemathesis
from django.core.management import call_command
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rest_framework_simplejwt.tokens import AccessToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from notifications.services import notification_publish
from tests.support.api import client_for, make_publisher
from tests.support.factories import DepartmentFactory, UserFactory, add_members
from workflow import services as workflow

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Bounds the run (about 15 s here): valid and invalid cases per operation, deterministic.
EXAMPLES_PER_OPERATION = 30


@pytest.mark.django_db
def test_schema_generates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "/api/notifications/{id}/deliveries/" in (tmp_path / "schema.yaml").read_text()


@pytest.mark.django_db
def test_schema_and_docs_are_served():
    client = client_for()
    schema = client.get("/api/schema/", headers={"Accept": "application/json"}).json()
    assert schema["openapi"].startswith("3.")
    publish = schema["paths"]["/api/notifications/"]["post"]
    assert {"200", "201", "400", "401", "403", "409", "413", "415", "429"} <= set(publish["responses"])
    batch = schema["paths"]["/api/notifications/batch/"]["post"]
    assert {"200", "400", "401", "403", "413", "415", "429"} <= set(batch["responses"])
    item_result = schema["components"]["schemas"]["PublishBatchItemResult"]
    assert set(item_result["properties"]) == {"index", "status", "notification", "error"}
    assert item_result["required"] == ["index", "status"]
    assert schema["components"]["schemas"]["Error"]["required"] == ["code", "message"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


@pytest.fixture
def world(settings):
    """A staff publisher who is also a requester, with a notification and a document of their own."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": dict.fromkeys(settings.API_THROTTLE_RATES, "100000/minute"),
    }
    me = make_publisher(is_staff=True)
    department = DepartmentFactory(code="ops")
    approver = UserFactory()
    add_members(department, me, approver)
    document = workflow.document_create(requester=me, department=department, title="Budget", approvers=[approver])
    notification = notification_publish(event="Ping", title="t", user_ids=[me.pk], published_by_id=me.pk)
    return {
        "token": str(AccessToken.for_user(me)),
        "ids": {"/api/notifications/": str(notification.pk), "/api/documents/": document.pk},
        # Generated bodies name recipients and approvers that do not exist; these make some of them real.
        "bodies": {
            ("POST", "/api/notifications/"): {"recipients": {"users": [me.pk], "departments": ["ops"]}},
            ("POST", "/api/notifications/batch/"): {
                "notifications": [{"event": "Ping", "title": "t", "recipients": {"users": [me.pk]}}]
            },
            ("POST", "/api/documents/"): {"department": "ops", "approvers": [approver.username]},
        },
    }


def with_fields(fields: dict):
    def apply(case):
        if isinstance(case.body, dict):
            case.body.update(fields)
        return case

    return apply


def test_api_conforms_to_its_schema(live_server, world):
    schema_response = client_for().get("/api/schema/", headers={"Accept": "application/json"})
    schema = schemathesis.openapi.from_dict(json.loads(schema_response.content))
    headers = {"Authorization": f"Bearer {world['token']}"}
    answered: set[tuple[str, str, int]] = set()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    for operation in operations:
        strategies = [
            operation.as_strategy(mode, headers=headers)
            for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
        ]
        known_id = next((value for prefix, value in world["ids"].items() if operation.path.startswith(prefix)), None)
        if "{id}" in operation.path and known_id is not None:
            # Real objects too, not only ids that do not exist.
            strategies.append(operation.as_strategy(headers=headers, path_parameters={"id": known_id}))
        real_fields = world["bodies"].get((operation.method.upper(), operation.path))
        if real_fields is not None:
            strategies.append(operation.as_strategy(headers=headers).map(with_fields(real_fields)))

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=st.one_of(strategies))
        def conforms(case) -> None:
            response = case.call_and_validate(base_url=live_server.url, headers=headers, checks=CHECKS)
            answered.add((case.method, case.path, response.status_code))

        conforms()

    # The run reached real successes, not only refusals.
    assert {
        ("POST", "/api/notifications/", 201),
        ("POST", "/api/notifications/batch/", 200),
        ("GET", "/api/notifications/{id}/deliveries/", 200),
        ("POST", "/api/notifications/{id}/read/", 200),
        ("POST", "/api/documents/", 201),
        ("POST", "/api/documents/{id}/submit/", 200),
        ("POST", "/api/devices/", 201),
        ("GET", "/api/devices/", 200),
    } <= answered
