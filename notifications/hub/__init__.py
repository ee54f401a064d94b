"""The real-time hub: authenticated WebSocket endpoints that web and mobile clients keep open.

- `auth.py`     JWT from the `Authorization: Bearer` header or `access_token` query → `HubIdentity`
- `origin.py`   the Origin rule (`WS_ALLOWED_ORIGINS`), as ASGI middleware
- `session.py`  `HubSession`: everything a connection does, independent of the wire protocol
                (auth result, presence, groups, token expiry, replay, ack/read, rooms, typing, de-duplication)
- `client_messages.py` what a session tells its client (`Hello`, `NotificationMessage`, ...), unrendered
- `errors.py`   `HubError`: a refused request (the connection stays open)
- `closes.py`   `CloseReason`: every close code and reason the server ends a connection with
- `rate_limit.py` `MessageRateLimit`: the flood guard of one connection
- `acks.py`     `AckBatcher`: the acks of every connection of the process, written in batches
- `database.py` `in_database_thread`: how the event loop reaches the database
- `router.py`   `HubRouter`: the process's one member of the channel-layer groups, handing messages to its connections
- `heartbeat.py` `PresenceRefresher`: the process's one timer keeping its connections' presence fresh
- `per_loop.py` `one_per_event_loop`: how the router, the refresher and the ack batcher are one per process
- `eager.py`    `start_eagerly`: how the router writes a frame to each connection without a task per frame
- `consumer.py` `HubConsumer`: the Channels lifecycle, guards and layer handlers every endpoint shares
- `native.py`   `/ws/notifications/`, the native JSON protocol (docs/protocol.md)
- `signalr/`    `/hubs/workflow`, the ASP.NET Core SignalR protocol for unchanged SignalR clients (docs/signalr.md)
- `routing.py`  the WebSocket URL routes

A protocol is one `HubConsumer` subclass that parses and renders its own
frames; see `consumer.py`.
"""
