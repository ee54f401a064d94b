"""A redis-server of a test's own, for tests that stop or restart Redis, or count what it was sent.

The shared Redis serves every test run on the machine: never restart it, and
its INFO counters are everybody's. This one listens on a port the OS picked
and keeps nothing on disk::

    redis_server = PrivateRedis()
    redis_server.start()
    ... redis_server.url ...
    redis_server.restart()  # a new, empty Redis on the same port
    redis_server.stop()

The `private_redis` fixture (tests/notifications/hub/conftest.py) points the
test process at one.
"""

import socket
import subprocess

import redis

from tests.support.waiting import eventually


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with redis.Redis(port=self.port) as client:
            assert eventually(lambda: _pings(client), timeout=5), "private redis-server did not start"

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


def _pings(client: redis.Redis) -> bool:
    try:
        return client.ping()
    except redis.RedisError:
        return False
