"""What kind of NotifyHub process this is, for the settings that differ by kind.

`notifyhub/asgi.py` calls `mark_web_process()` before Django reads its settings.
A flag in memory, not an environment variable: processes started from this one
(a test's Celery worker, a subprocess) must not inherit it.
"""

_web_process = False


def mark_web_process() -> None:
    global _web_process
    _web_process = True


def is_web_process() -> bool:
    return _web_process
