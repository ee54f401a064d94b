"""Fail fast, in one line each, when a service NotifyHub needs is unreachable."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from notifyhub.health import check_database, check_redis

REDIS_HINT = (
    "start Redis (e.g. `redis-server --daemonize yes --port 6379 --save ''`) "
    "or point REDIS_URL in .env at a running server"
)


class Command(BaseCommand):
    help = "Check that Redis (REDIS_URL) and the database (DATABASE_URL) are reachable."

    def handle(self, *args, **options) -> None:
        problem = check_redis()
        if problem:
            raise CommandError(f"Redis is unreachable at REDIS_URL={settings.REDIS_URL} ({problem}); {REDIS_HINT}.")
        problem = check_database()
        if problem:
            raise CommandError(f"The database at DATABASE_URL is unreachable ({problem}).")
        self.stdout.write("Redis and the database are reachable.")
