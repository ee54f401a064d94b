"""ASGI entry point: HTTP goes to Django, WebSockets to the hub's consumers, each with the client a trusted proxy
names (notifyhub/proxies.py)."""

import os

import django

from notifyhub import process

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifyhub.settings")
# This is the web process: settings give it a PostgreSQL connection pool (DATABASE_POOL_MAX_SIZE; workers get none).
process.mark_web_process()

# Django must be set up before anything imports models.
django.setup(set_prefix=False)

from notifyhub.http import SyncViewsASGIHandler  # noqa: E402

django_asgi_application = SyncViewsASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from notifications.hub.origin import OriginGuard  # noqa: E402
from notifications.hub.routing import websocket_urlpatterns  # noqa: E402
from notifyhub import daphne_patch, jwt_keys, uvicorn_patch  # noqa: E402
from notifyhub.proxies import ClientFromTrustedProxies  # noqa: E402

# The hub closes with 1008, 1009 and 4401 plus a reason; daphne needs help to send those (see daphne_patch).
# On SIGTERM both servers run notifyhub.shutdown's steps (see daphne_patch and uvicorn_patch).
daphne_patch.install()
uvicorn_patch.install()
# Every hub connect and API request verifies a JWT: its key is checked once, not per token (see jwt_keys).
jwt_keys.install()

# Outermost, so that everything below sees the client and scheme decided once, and no proxy header.
application = ClientFromTrustedProxies(
    ProtocolTypeRouter(
        {
            "http": django_asgi_application,
            "websocket": OriginGuard(URLRouter(websocket_urlpatterns)),
        }
    )
)

# Last: what is loaded by now stays for the process's life (see process.collect_garbage_less_often).
process.collect_garbage_less_often()
