"""Django's PostgreSQL backend with a connection pool that recovers from a PostgreSQL restart at once (see base.py)."""
