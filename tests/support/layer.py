"""A stand-in hub connection on the real channel layer: a channel in some groups, read from its own loop."""

import asyncio

from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers


class LayerListener:
    def __init__(self, groups: list[str]) -> None:
        self.loop = asyncio.new_event_loop()
        self.layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        self.channel = self.loop.run_until_complete(self.layer.new_channel())
        for group in groups:
            self.loop.run_until_complete(self.layer.group_add(group, self.channel))

    def drain(self, timeout: float = 0.5) -> list[dict]:
        """Every message waiting for this channel (the sends under test finished before this is called)."""
        messages = []
        while True:
            try:
                messages.append(
                    self.loop.run_until_complete(asyncio.wait_for(self.layer.receive(self.channel), timeout))
                )
            except TimeoutError:
                return messages

    def close(self) -> None:
        self.loop.close()
