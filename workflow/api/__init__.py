"""The REST API of the workflow domain: one module per resource, routes in urls.py."""
