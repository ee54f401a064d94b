"""The test suite's settings (pyproject.toml's DJANGO_SETTINGS_MODULE): the shared ones, and what tests change.

Servers and workers that tests start as processes inherit this module from the environment.
"""

from notifyhub.settings import *  # noqa: F403 - the shared settings, then the differences below

# PBKDF2 is slow by design; the tests create many users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
