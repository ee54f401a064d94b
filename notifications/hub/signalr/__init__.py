"""The SignalR endpoint `/hubs/workflow`: the hub for unchanged ASP.NET Core SignalR clients (docs/signalr.md).

Teams moving from an ASP.NET Core `WorkflowHub` point their `@microsoft/signalr`
(or .NET, Java, Python) clients here and change nothing else. It is the same
hub as `/ws/notifications/`, spoken in a second protocol: authentication,
presence, groups, replay, acknowledgements and reads are `HubSession`'s.

- `negotiate.py`  `POST /hubs/workflow/negotiate`: bearer auth, the transport offer, CORS for browsers
- `protocol.py`   the JSON hub protocol: record framing, handshake, messages, how client messages render
- `consumer.py`   `SignalRHubConsumer`: handshake, keep-alive, hub methods → `HubSession` commands

Negotiation is stateless: the connection token it hands out is not stored,
and the WebSocket accepts any `id` (or none) as a new connection, so any
number of web processes serve the endpoint without sticky sessions.
"""
