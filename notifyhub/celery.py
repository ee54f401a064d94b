"""The Celery application: worker and beat both start from here (see Procfile)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifyhub.settings")

app = Celery("notifyhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
