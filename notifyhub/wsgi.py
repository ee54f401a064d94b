"""WSGI entry point, for management tooling only: NotifyHub is served over ASGI (see Procfile)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifyhub.settings")

application = get_wsgi_application()
