"""Listen on the real channel layer as a hub connection would: joined to user groups, collecting messages.

Runs its own event loop in a thread, so sync tests (and the services they call,
which publish through async_to_sync) can use it without sharing a loop.
"""

import asyncio
import threading
import time
from collections import defaultdict

from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

from notifications import events


class LayerListener:
    def __init__(self, user_ids) -> None:
        self.user_ids = list(user_ids)
        self._messages: dict[int, list[dict]] = defaultdict(list)
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._listen(),), daemon=True)
        self._stop: asyncio.Event | None = None

    def __enter__(self) -> "LayerListener":
        self._thread.start()
        assert self._ready.wait(10), "the listener did not join its groups"
        return self

    def __exit__(self, *exc_info) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._loop.close()

    def messages(self, user_id: int) -> list[dict]:
        with self._lock:
            return list(self._messages[user_id])

    def notification_ids(self, user_id: int) -> list[str]:
        return [message["notification"]["id"] for message in self.messages(user_id)]

    def wait_for(self, user_id: int, count: int, timeout: float = 10) -> list[dict]:
        """The user's messages once there are at least `count` (fails after `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while len(self.messages(user_id)) < count:
            assert time.monotonic() < deadline, f"user {user_id} got {self.messages(user_id)}, expected {count}"
            time.sleep(0.02)
        return self.messages(user_id)

    async def _listen(self) -> None:
        self._stop = asyncio.Event()
        layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        channels = {user_id: await layer.new_channel() for user_id in self.user_ids}
        for user_id, channel in channels.items():
            await layer.group_add(events.user_group(user_id), channel)
        receivers = [
            asyncio.ensure_future(self._receive(layer, user_id, channel)) for user_id, channel in channels.items()
        ]
        self._ready.set()
        await self._stop.wait()
        for receiver in receivers:
            receiver.cancel()
        await asyncio.gather(*receivers, return_exceptions=True)
        for user_id, channel in channels.items():
            await layer.group_discard(events.user_group(user_id), channel)
        await layer.close_pools()

    async def _receive(self, layer, user_id: int, channel: str) -> None:
        while True:
            message = await layer.receive(channel)
            with self._lock:
                self._messages[user_id].append(message)
