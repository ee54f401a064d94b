"""How the driver publishes: to the hub through its REST API, and to the bare server through Redis.

Each publisher stamps the notification immediately before sending it, so the
measured latency covers the whole path from the publisher's call to the
client's socket: for the hub that is the API request (authentication,
validation, the Notification and Delivery rows, commit) plus the dispatch.
"""

import json

import httpx
import redis.asyncio

from bench import wire

API_PATH = "/api/notifications/"
BATCH_PATH = "/api/notifications/batch/"


class PublishError(RuntimeError):
    """The server refused or failed a publish."""


class BarePublisher:
    """PUBLISH a ready-made frame on the user's or the department's channel."""

    name = "redis"

    def __init__(
        self, *, redis_url: str, user_ids: list[int], department_id: int, prefix: str = wire.BARE_CHANNEL_PREFIX
    ) -> None:
        self.redis = redis.asyncio.Redis.from_url(redis_url)
        self.user_ids = user_ids
        self.department_id = department_id
        self.prefix = prefix

    async def to_user(self, *, index: int, event: str, phase: str, seq: int) -> None:
        channel = wire.bare_user_channel(self.user_ids[index], self.prefix)
        await self.redis.publish(channel, wire.bare_notification_frame(event=event, phase=phase, seq=seq))

    async def to_department(self, *, event: str, phase: str, seq: int) -> None:
        channel = wire.bare_department_channel(self.department_id, self.prefix)
        await self.redis.publish(channel, wire.bare_notification_frame(event=event, phase=phase, seq=seq))

    async def close(self) -> None:
        await self.redis.aclose()


class ApiPublisher:
    """`POST /api/notifications/` as a service user holding `notifications.publish_notification`."""

    name = "api"

    def __init__(self, *, base_url: str, token: str, user_ids: list[int], department_id: int) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
            timeout=30,
        )
        self.user_ids = user_ids
        self.department_id = department_id

    async def to_user(self, *, index: int, event: str, phase: str, seq: int) -> str:
        return await self._post({"users": [self.user_ids[index]]}, event=event, phase=phase, seq=seq)

    async def to_department(self, *, event: str, phase: str, seq: int) -> str:
        return await self._post({"departments": [self.department_id]}, event=event, phase=phase, seq=seq)

    async def to_users(self, *, indexes: list[int], event: str, phase: str, first_seq: int) -> list[str]:
        """One batch publish: a single-recipient notification to each user of `indexes`, numbered from `first_seq`."""
        items = [
            self._body({"users": [self.user_ids[index]]}, event=event, phase=phase, seq=first_seq + offset)
            for offset, index in enumerate(indexes)
        ]
        response = await self.http.post(BATCH_PATH, content=json.dumps({"notifications": items}))
        results = response.json().get("results", []) if response.status_code == 200 else []
        refused = [result for result in results if result["status"] != 201]
        if response.status_code != 200 or refused:
            detail = refused[0] if refused else response.text[:300]
            raise PublishError(f"POST {BATCH_PATH} answered {response.status_code}: {detail}")
        return [result["notification"]["id"] for result in results]

    async def _post(self, recipients: dict, *, event: str, phase: str, seq: int) -> str:
        body = self._body(recipients, event=event, phase=phase, seq=seq)
        response = await self.http.post(API_PATH, content=json.dumps(body))
        if response.status_code != 201:
            raise PublishError(f"POST {API_PATH} answered {response.status_code}: {response.text[:300]}")
        return response.json()["id"]

    @staticmethod
    def _body(recipients: dict, *, event: str, phase: str, seq: int) -> dict:
        return {
            **wire.notification_body(event=event, seq=seq),
            "recipients": recipients,
            "data": {wire.STAMP_KEY: wire.stamp(phase=phase, seq=seq)},
        }

    async def close(self) -> None:
        await self.http.aclose()


class ServicePublisher:
    """In-process `notification_publish`, as a Celery task or a workflow service would call it.

    Used for the hub only when its REST API is not there (a 404 on the publish path).
    """

    name = "service"

    def __init__(self, *, user_ids: list[int], department_id: int, publisher_id: int) -> None:
        self.user_ids = user_ids
        self.department_id = department_id
        self.publisher_id = publisher_id

    async def to_user(self, *, index: int, event: str, phase: str, seq: int) -> str:
        return await self._publish(user_ids=[self.user_ids[index]], event=event, phase=phase, seq=seq)

    async def one_to_users(self, *, indexes: list[int], event: str, phase: str, seq: int) -> str:
        """One notification to several users (the reconnect storm publishes so while the web process is down)."""
        user_ids = [self.user_ids[index] for index in indexes]
        return await self._publish(user_ids=user_ids, event=event, phase=phase, seq=seq)

    async def to_department(self, *, event: str, phase: str, seq: int) -> str:
        return await self._publish(department_ids=[self.department_id], event=event, phase=phase, seq=seq)

    async def to_users(self, *, indexes: list[int], event: str, phase: str, first_seq: int) -> list[str]:
        """No batch without the REST API: one publish after the other."""
        return [
            await self.to_user(index=index, event=event, phase=phase, seq=first_seq + offset)
            for offset, index in enumerate(indexes)
        ]

    async def _publish(self, *, event: str, phase: str, seq: int, **recipients) -> str:
        from asgiref.sync import sync_to_async

        from notifications.services import notification_publish

        def publish() -> str:
            notification = notification_publish(
                **wire.notification_body(event=event, seq=seq),
                data={wire.STAMP_KEY: wire.stamp(phase=phase, seq=seq)},
                published_by_id=self.publisher_id,
                **recipients,
            )
            return str(notification.pk)

        # thread_sensitive: one thread, and the dispatch's sends go through notifications.layer' own loop,
        # exactly as in a Django view under ASGI.
        return await sync_to_async(publish, thread_sensitive=True)()

    async def close(self) -> None:
        return None


async def api_is_available(base_url: str, token: str) -> bool:
    """False if the hub has no publish endpoint yet (404), True otherwise."""
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"}) as http:
        response = await http.options(API_PATH)
        return response.status_code != 404
