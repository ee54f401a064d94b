"""Production settings: `DJANGO_SETTINGS_MODULE=notifyhub.settings.production` (docs/deploy.md).

The shared settings, plus what a deployment behind a TLS-terminating proxy needs, and refusals where the shared
settings would let a mistake through: DEBUG is refused, and SECRET_KEY (and JWT_SIGNING_KEY, when set) must
pass Django's own rule for keys. `manage.py check --deploy` is clean with these settings.

HTTPS: the proxy in TRUSTED_PROXIES says `X-Forwarded-Proto: https`, and notifyhub/proxies.py makes that the
request's scheme; a plain-HTTP request is redirected, except the probes and /metrics, which orchestrators and
Prometheus call on the process directly.
"""

from notifyhub.env import env
from notifyhub.settings import *  # noqa: F403 - the shared settings, then what production adds
from notifyhub.settings import DEBUG, JWT_SIGNING_KEY, SECRET_KEY


def strong_key(key: str) -> bool:
    """Django's rule for SECRET_KEY (its security.W009 check): 50 characters or more, 5 different, not generated
    by startproject for development."""
    return len(key) >= 50 and len(set(key)) >= 5 and not key.startswith("django-insecure-")


env.check(not DEBUG, "DEBUG=true is refused by notifyhub.settings.production")
env.check(
    not SECRET_KEY or strong_key(SECRET_KEY), "SECRET_KEY needs 50 characters or more, 5 of them different (production)"
)
env.check(
    not JWT_SIGNING_KEY or strong_key(JWT_SIGNING_KEY),
    "JWT_SIGNING_KEY needs 50 characters or more, 5 of them different (production)",
)

SECURE_SSL_REDIRECT = True
SECURE_REDIRECT_EXEMPT = [r"^livez$", r"^readyz$", r"^healthz$", r"^metrics$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# Browsers remember to use HTTPS only for this long (a year); 0 turns HSTS off.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Preloading asks browser vendors to hard-code HTTPS for the whole domain: the domain owner's decision, off unless
# asked for (so Django's reminder about it is silenced rather than the header sent by default).
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

env.stop_if_invalid()
