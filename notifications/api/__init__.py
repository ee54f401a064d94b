"""The REST API of the notifications domain: one module per resource, routes in urls.py."""
