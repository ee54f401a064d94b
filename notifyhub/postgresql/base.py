"""Django's PostgreSQL backend, whose connection pool drops every dead connection as soon as it meets one.

After a PostgreSQL restart (or an operator terminating backends) every idle connection in the web process's
pool is dead. With Django's CONN_HEALTH_CHECKS psycopg's pool checks each connection as it hands it out, but
after a failed check it sleeps before the next try (1 s, then 2 s, 4 s ...: its reconnect backoff), so with
a few dead connections in line a request waited for seconds and then failed with PoolTimeout. Here the first
failed check has the pool check all its idle connections at once (`ConnectionPool.check`, psycopg's own),
so the dead ones go together and the next pick is a live or a new connection: one short wait, no failure.

Everything else is Django's backend; `settings.py` selects this one for PostgreSQL.
"""

import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base

logger = logging.getLogger(__name__)


class DatabaseWrapper(base.DatabaseWrapper):
    # Django's backend has these; django-stubs leaves them out.
    _connection_pools: dict[str, Any]
    _configure_connection: Callable[[Any], None]

    @property
    def pool(self):
        """Django's pool (see its backend), checking connections as `_check_or_drop_the_dead` does."""
        pool_options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == NO_DB_ALIAS or not pool_options:
            return None
        if self.alias not in self._connection_pools:
            if self.settings_dict.get("CONN_MAX_AGE", 0) != 0:
                raise ImproperlyConfigured("Pooling doesn't support persistent connections.")
            from psycopg_pool import ConnectionPool

            connect_kwargs = {**self.get_connection_params(), "autocommit": True}  # Django sets it later on
            pool = ConnectionPool(
                kwargs=connect_kwargs,
                open=False,  # opened on first use, as Django does
                configure=self._configure_connection,
                check=_check_or_drop_the_dead(lambda: self._connection_pools.get(self.alias)),
                **({} if pool_options is True else pool_options),
            )
            self._connection_pools.setdefault(self.alias, pool)
        return self._connection_pools[self.alias]


def _check_or_drop_the_dead(current_pool):
    """A pool `check`: psycopg's per-connection check; when it fails, every idle connection is checked at once."""
    from psycopg_pool import ConnectionPool

    def check(connection) -> None:
        try:
            ConnectionPool.check_connection(connection)
        except Exception:
            pool = current_pool()
            if pool is not None:
                logger.warning("database: a pooled connection was dead; checking every idle one now")
                pool.check()  # uses ConnectionPool.check_connection itself, never this function
            raise

    return check
