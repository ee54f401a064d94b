"""Hub sessions without a socket or a database: as `HubSession.open()` leaves them, for the hub's in-process tests."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from notifications import presence
from notifications.hub.auth import HubIdentity
from notifications.hub.heartbeat import presence_refresher
from notifications.hub.session import HubSession


def hub_session(
    user_id: int, *, department_ids: tuple[int, ...] = (), rooms: tuple[int, ...] = (), connection_id: str = ""
) -> HubSession:
    """A session as `open()` leaves it (and `subscribe` for `rooms`), without a socket or a database."""

    async def close_connection(reason) -> None:
        pass

    session = HubSession(
        connection_id=connection_id or f"conn-{user_id}", close_connection=close_connection, deliver=lambda _: None
    )
    user = get_user_model()(pk=user_id, username=f"user-{user_id}")
    session.identity = HubIdentity(user=user, token_expires_at=timezone.now() + timedelta(hours=1))
    session.user_id = user_id
    session.department_ids = list(department_ids)
    session.rooms = set(rooms)
    return session


async def opened(*sessions: HubSession) -> None:
    """Register the sessions' presence and hand them to the process's refresher, as `open()` does."""
    for session in sessions:
        await presence.connection_alive(
            session.user_id, session.connection_id, department_ids=session.department_ids, document_ids=session.rooms
        )
        presence_refresher().register(session)
