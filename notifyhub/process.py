"""What kind of NotifyHub process this is, for the settings that differ by kind, and the web process's
garbage collector.

`notifyhub/asgi.py` calls `mark_web_process()` before Django reads its settings.
A flag in memory, not an environment variable: processes started from this one
(a test's Celery worker, a subprocess) must not inherit it.
"""

import gc

# Allocations of GC-tracked objects (less deallocations) that start a young-generation collection; Python's
# default is 700. Not higher: a young collection's pause grows with it (~5 ms here, ~20 ms at 50,000), and one
# that lands in a fan-out delays its last member by as much. See `collect_garbage_less_often`.
YOUNG_COLLECTION_THRESHOLD = 10_000

_web_process = False


def mark_web_process() -> None:
    global _web_process
    _web_process = True


def is_web_process() -> bool:
    return _web_process


def collect_garbage_less_often() -> None:
    """Leave what the process loaded to the end out of garbage collection, and collect the young less often.

    Every task, future and coroutine the hub makes (a few per ack, per delivery, per request) is tracked by the
    cycle collector. At Python's default threshold a burst of 20,000 acks on 2,000 connections set off some
    1,000 young collections and 6 to 8 full ones, and a full collection walked every object the process holds:
    Django and its apps, and every connection's state, ~250 ms each, during which no frame went out. Frozen
    (`gc.freeze`), the objects loaded at start-up are never walked again; at `YOUNG_COLLECTION_THRESHOLD` most of
    a burst's tasks have finished before a collection looks at them, so few reach the older generations and
    full collections become rare (docs/performance.md, "Acks, and the garbage collector"). Garbage in reference cycles
    still goes, a little later; everything else is freed at once by reference counting, as before.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)
