"""The bare baseline: the fastest thing Python does on this machine for what the hub does.

A `websockets` server on uvloop that keeps, per user and per department, the
set of local sockets, receives frames from Redis pub/sub (one pattern
subscription) and writes each frame verbatim to every socket of its channel
with `websockets.broadcast`. No authentication, no database, no per-message
work beyond the socket writes: the floor the hub is compared against.

A client says who it is in the query string: `/?user=42&departments=7,9`.
It gets `{"type": "hello"}` once registered; frames it sends are read and dropped.

Run as `python -m bench.bare_server --port N --redis-url URL [--channel-prefix P]`.
"""

import argparse
import asyncio
import contextlib
import json
import signal
from collections import defaultdict
from urllib.parse import parse_qs, urlsplit

import redis.asyncio
from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench.clients import raise_fd_limit, run_event_loop
from bench.wire import BARE_CHANNEL_PREFIX, bare_department_channel, bare_user_channel

HELLO = json.dumps({"type": "hello", "server": "bare"})


class Registry:
    """Which local sockets listen on which channel."""

    def __init__(self) -> None:
        self.sockets: defaultdict[bytes, set[ServerConnection]] = defaultdict(set)

    def add(self, channels: list[bytes], websocket: ServerConnection) -> None:
        for channel in channels:
            self.sockets[channel].add(websocket)

    def remove(self, channels: list[bytes], websocket: ServerConnection) -> None:
        for channel in channels:
            members = self.sockets.get(channel)
            if members is not None:
                members.discard(websocket)
                if not members:
                    del self.sockets[channel]


def channels_of(path: str, prefix: str) -> list[bytes]:
    """The channels a connection listens on, from `?user=<id>&departments=<id>,<id>`."""
    query = parse_qs(urlsplit(path).query)
    user_id = int(query["user"][0])
    departments = [int(value) for value in ",".join(query.get("departments", [])).split(",") if value]
    channels = [bare_user_channel(user_id, prefix)] + [bare_department_channel(d, prefix) for d in departments]
    return [channel.encode() for channel in channels]


async def run_server(*, host: str, port: int, redis_url: str, prefix: str = BARE_CHANNEL_PREFIX) -> None:
    registry = Registry()
    client = redis.asyncio.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.psubscribe(prefix + "*")

    async def forward() -> None:
        async for message in pubsub.listen():
            sockets = registry.sockets.get(message["channel"])
            if sockets:
                broadcast(sockets, message["data"], text=True)

    async def handle(websocket: ServerConnection) -> None:
        try:
            channels = channels_of(websocket.request.path, prefix)
        except (KeyError, ValueError):
            await websocket.close(1008, "user id required: /?user=<id>&departments=<id>,...")
            return
        registry.add(channels, websocket)
        try:
            await websocket.send(HELLO)
            async for _ in websocket:
                pass
        finally:
            registry.remove(channels, websocket)

    stop = asyncio.get_running_loop().create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set_result, None)
    forwarder = asyncio.create_task(forward())
    async with serve(handle, host, port, compression=None, ping_interval=None, max_size=2**16, backlog=2048):
        await stop
    forwarder.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await forwarder
    await pubsub.aclose()
    await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--channel-prefix", default=BARE_CHANNEL_PREFIX)
    options = parser.parse_args()
    raise_fd_limit()
    run_event_loop(
        run_server(host=options.host, port=options.port, redis_url=options.redis_url, prefix=options.channel_prefix)
    )


if __name__ == "__main__":
    main()
