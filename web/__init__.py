"""The pages people read their notifications and do their approvals on: server-rendered, working before
JavaScript loads, live through the client library (clients/js/) once it has. Views parse input, call the
notifications and workflow services and selectors, and render; nothing here decides anything."""
