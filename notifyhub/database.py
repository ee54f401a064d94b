"""Database errors that a moment later may not happen again: the connection was lost, or PostgreSQL chose
this transaction to abort (a deadlock, a serialization failure).

psycopg reports all of them as OperationalError (Django re-raises them as its own), and an operation on a
connection that broke earlier as InterfaceError. Callers that may run again (idempotent hub commands, an HTTP
request that committed nothing) retry once; others answer 503 with Retry-After.
"""

from django.db import InterfaceError, OperationalError

TRANSIENT_DATABASE_ERRORS = (OperationalError, InterfaceError)
