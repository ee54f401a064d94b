"""The Celery application: worker and beat both start from here (see Procfile)."""

import logging.config
import os
from typing import Any

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifyhub.settings")

app = Celery("notifyhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def configure_logging_from_settings(**_: Any) -> None:
    """Workers and beat log as the web does (settings.LOGGING: LOG_FORMAT, token scrubbing, quiet periodic
    tasks) instead of Celery's own handler on the root logger."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
