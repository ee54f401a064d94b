"""core/api/serializers.py: fields kept per thread are bound to the instance validating, and never shared."""

import threading

from notifications.api.serializers import PublishSerializer


def test_fields_kept_per_thread_validate_each_body_alone_in_turn_and_across_threads():
    good = {"event": "InvoiceDue", "title": "Invoice 7", "recipients": {"users": [5]}}
    bad = {"event": "not valid", "title": "", "recipients": {}, "actions": [{"id": "A B"}]}
    first = PublishSerializer(data=bad)
    assert not first.is_valid() and set(first.errors) == {"event", "title", "recipients", "actions"}
    second = PublishSerializer(data=good)
    assert second.is_valid(), second.errors
    assert second.validated_data["users"] == [5] and second.validated_data["title"] == "Invoice 7"
    assert first.fields is second.fields  # one thread: the same fields, bound to the instance validating

    answers: dict[str, object] = {}

    def validate_in_a_thread(name: str, body: dict) -> None:
        serializer = PublishSerializer(data=body)
        answers[name] = serializer.validated_data if serializer.is_valid() else sorted(serializer.errors)
        answers[f"{name}-fields"] = serializer.fields

    threads = [threading.Thread(target=validate_in_a_thread, args=args) for args in (("g", good), ("b", bad))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers["b"] == ["actions", "event", "recipients", "title"]
    assert answers["g"]["users"] == [5]
    assert answers["g-fields"] is not answers["b-fields"] is not second.fields  # each thread its own
