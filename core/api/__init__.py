"""Conventions every app's REST API shares: one error shape, strict input, pagination, throttles, schema.

Views live with their domain (`notifications/api/`, `workflow/api/`); these
modules are wired in `settings.REST_FRAMEWORK`, so a new viewset gets them
without asking.
"""
