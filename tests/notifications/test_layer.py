"""notifications/layer.py from sync code: sends never wait on the server's event loop, and never without a bound."""

import asyncio
import inspect
import logging
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer

from notifications import layer
from tests.support.api import closed_port
from tests.support.layer import LayerListener
from tests.support.waiting import eventually

PAYLOAD = {"id": "0b8f4c3e-1111-4222-8333-444455556666", "event": "Ping", "title": "t"}


def test_a_request_thread_sends_after_the_servers_event_loop_has_stopped(redis_client):
    """What SIGTERM did: the loop that ran the request stopped while its view was about to publish."""
    listener = LayerListener([layer.user_group(7)])
    server_loop = asyncio.new_event_loop()
    loop_stopped = threading.Event()
    sent = []

    def view() -> None:  # runs on a request thread, as every NotifyHub view does under ASGI
        loop_stopped.wait(5)
        sent.append(layer.send_notification_now(payload=PAYLOAD, user_ids=[7]))

    request = server_loop.create_task(sync_to_async(view, thread_sensitive=False)())
    server_loop.run_until_complete(asyncio.sleep(0.2))  # the view is running; now the server's loop stops
    loop_stopped.set()
    try:
        assert eventually(lambda: sent, timeout=10)
        assert sent == [True]
        [message] = listener.drain()
        assert message["notification"]["id"] == PAYLOAD["id"]
    finally:
        server_loop.run_until_complete(asyncio.wait_for(request, 10))  # lets a stuck view go on failure
        server_loop.close()
        listener.close()


def test_a_send_the_layer_does_not_finish_in_time_is_logged_and_not_raised(monkeypatch, caplog):
    async def never_answers(group: str, message: dict) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(layer, "_group_send", never_answers)
    monkeypatch.setattr(layer, "SYNC_SEND_TIMEOUT", 0.2)

    with caplog.at_level(logging.WARNING, logger="notifications.layer"):
        assert layer.send_notification_now(payload=PAYLOAD, user_ids=[7, 8]) is False

    assert "2 group send(s) not completed" in caplog.text
    assert "did not answer within 0.2 s" in caplog.text


def test_a_send_to_an_unreachable_layer_is_logged_and_not_raised(settings, caplog):
    dead = f"redis://127.0.0.1:{closed_port()}/0"
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [dead]}}
    }

    with caplog.at_level(logging.WARNING, logger="notifications.layer"):
        assert layer.send_notification_now(payload=PAYLOAD, user_ids=[7]) is False

    assert "not completed" in caplog.text


def test_sync_sends_refuse_to_block_a_running_event_loop():
    async def from_the_loop() -> None:
        layer.send_notification_now(payload=PAYLOAD, user_ids=[7])

    with pytest.raises(RuntimeError, match="from a running event loop"):
        asyncio.run(from_the_loop())


def test_channels_redis_still_cleans_up_received_messages_in_tasks_it_lists():
    """What `process_channel_receive_abandoned` cancels when the hub router restarts a stuck receive."""
    assert isinstance(get_channel_layer(), RedisChannelLayer)
    assert isinstance(get_channel_layer().receive_cleaners, list)
    source = inspect.getsource(RedisChannelLayer.receive_single)
    assert "self.receive_cleaners.append(cleaner)" in source
    assert "self.receive_clean_locks.release(channel_key)" in source


def test_groups_join_leaves_redis_as_channels_redis_group_add_does(redis_client):
    """`groups_join` writes channels-redis's group keys itself (one round trip): members, scores and expiry must be
    what `group_add` writes, and a group send must reach the channel."""
    channels_layer = get_channel_layer()
    groups = [layer.user_group(7), layer.department_group(8)]

    async def join_both_ways() -> dict:
        ours, theirs = await channels_layer.new_channel(), await channels_layer.new_channel()
        await layer.groups_join(ours, groups)
        for group in groups:
            await channels_layer.group_add(group, theirs)
        await channels_layer.group_send(layer.department_group(8), {"type": "probe"})
        received = await asyncio.wait_for(channels_layer.receive(ours), 5)
        keys = {group: channels_layer._group_key(group) for group in groups}
        return {
            "received": received,
            "members": {group: redis_client.zrange(key, 0, -1, withscores=True) for group, key in keys.items()},
            "ttls": {group: redis_client.ttl(key) for group, key in keys.items()},
            "ours": ours.encode(),
            "theirs": theirs.encode(),
        }

    found = asyncio.run(join_both_ways())

    assert found["received"]["type"] == "probe"
    for group in groups:
        scores = dict(found["members"][group])
        assert set(scores) == {found["ours"], found["theirs"]}
        assert abs(scores[found["ours"]] - scores[found["theirs"]]) < 5  # both: when they joined (time.time())
        assert channels_layer.group_expiry - 5 <= found["ttls"][group] <= channels_layer.group_expiry


def test_groups_leave_removes_only_that_channel_as_channels_redis_group_discard_does(redis_client):
    channels_layer = get_channel_layer()
    groups = [layer.user_group(7), layer.department_group(8)]

    async def leave_one() -> dict:
        leaving, staying = await channels_layer.new_channel(), await channels_layer.new_channel()
        await layer.groups_join(leaving, groups)
        await layer.groups_join(staying, groups)
        await layer.groups_leave(leaving, groups)
        await layer.groups_leave(leaving, [])  # nothing to leave: no round trip, no error
        return {
            group: set(redis_client.zrange(channels_layer._group_key(group), 0, -1)) == {staying.encode()}
            for group in groups
        }

    assert asyncio.run(leave_one()) == dict.fromkeys(groups, True)
