"""The real-time hub: authenticated WebSocket endpoints that web and mobile clients keep open.

- `auth.py`     JWT from the `Authorization: Bearer` header or `access_token` query → `HubIdentity`
- `origin.py`   the Origin rule (`WS_ALLOWED_ORIGINS`), as ASGI middleware
- `session.py`  `HubSession`: everything a connection does, independent of the wire protocol
                (auth result, presence, groups, heartbeat, token expiry, replay, ack/read,
                rooms, typing, de-duplication, flood limit) and the protocol-neutral events
- `consumer.py` `HubConsumer`: the Channels lifecycle, guards and layer handlers every endpoint shares
- `native.py`   `/ws/notifications/`, the native JSON protocol (docs/protocol.md)
- `signalr/`    `/hubs/workflow`, the ASP.NET Core SignalR protocol for unchanged SignalR clients (docs/signalr.md)
- `routing.py`  the WebSocket URL routes

A protocol is one `HubConsumer` subclass that parses and renders its own
frames; see `consumer.py`.
"""
