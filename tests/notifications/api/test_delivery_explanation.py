"""The `explanation` of each row of GET /api/notifications/<id>/deliveries/: the console's sentences, in bulk."""

import pytest
import yaml
from django.core.management import call_command

from notifications.console.times import time_of_day
from notifications.models import Delivery
from notifications.services import delivery_acknowledge, delivery_push
from tests.notifications.api.test_delivery_status import publish_to_department
from tests.support.api import client_for
from tests.support.factories import DepartmentFactory, DeviceFactory, UserFactory, add_members

pytestmark = pytest.mark.django_db


def department_of(size: int, code: str = "ops"):
    department = DepartmentFactory(code=code)
    members = [UserFactory(username=f"{code}{index}", first_name="", last_name="") for index in range(size)]
    add_members(department, *members)
    return members


def test_each_row_explains_itself(publisher, redis_client, settings):
    settings.NOTIFY_PUSH_BACKEND = "log"
    acked, pushed, _ = department_of(3)
    DeviceFactory(user=pushed)
    notification_id = publish_to_department(publisher, "ops")
    delivery_acknowledge(user_id=acked.pk, notification_id=notification_id)
    push_delivery = Delivery.objects.get(notification_id=notification_id, recipient=pushed)
    assert delivery_push(delivery_id=push_delivery.pk) == "pushed (simulated)"

    response = client_for(publisher).get(f"/api/notifications/{notification_id}/deliveries/")

    assert response.status_code == 200
    rows = {row["recipient"]["username"]: row["explanation"] for row in response.json()["results"]}
    assert {name: row["verdict"] for name, row in rows.items()} == {
        "ops0": "delivered",
        "ops1": "pushed_simulated",
        "ops2": "waiting",
    }
    acknowledged = Delivery.objects.get(notification_id=notification_id, recipient=acked)
    assert rows["ops0"]["summary"].startswith(
        f"ops0 got it: acknowledged by a client at {time_of_day(acknowledged.acknowledged_at)}, "
    )
    assert rows["ops1"]["summary"].startswith("ops1 was not notified: offline (last seen: unknown); the push at ")
    assert rows["ops0"]["details"][0].startswith("Published at ")


def test_the_explanations_cost_the_same_queries_for_three_rows_or_twenty(
    publisher, redis_client, django_assert_max_num_queries
):
    department_of(3, code="small")
    department_of(20, code="large")
    small = publish_to_department(publisher, "small")
    large = publish_to_department(publisher, "large")
    client = client_for(publisher)

    with django_assert_max_num_queries(20) as small_queries:
        assert len(client.get(f"/api/notifications/{small}/deliveries/").json()["results"]) == 3
    with django_assert_max_num_queries(len(small_queries.captured_queries)) as large_queries:
        assert len(client.get(f"/api/notifications/{large}/deliveries/").json()["results"]) == 20
    assert len(large_queries.captured_queries) == len(small_queries.captured_queries)


def test_the_openapi_schema_describes_the_explanation(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    schema = yaml.safe_load((tmp_path / "schema.yaml").read_text())

    row = schema["components"]["schemas"]["DeliveryStatus"]
    assert row["properties"]["explanation"] == {
        "allOf": [{"$ref": "#/components/schemas/Explanation"}],
        "readOnly": True,
    }
    explanation = schema["components"]["schemas"]["Explanation"]
    assert set(explanation["properties"]) == {"verdict", "summary", "details"}
    assert explanation["properties"]["details"]["type"] == "array"
