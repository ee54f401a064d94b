"""Capturing what a workflow signal sends, for tests that assert on its keyword arguments."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.dispatch import Signal


@contextmanager
def signals_sent(signal: Signal) -> Iterator[list[dict]]:
    """Every send of `signal` while inside, as its keyword arguments (the `signal` argument left out)."""
    sent: list[dict] = []

    def remember(sender, **kwargs) -> None:
        kwargs.pop("signal")
        sent.append(kwargs)

    uid = f"tests.signals_sent.{id(sent)}"
    signal.connect(remember, dispatch_uid=uid)
    try:
        yield sent
    finally:
        signal.disconnect(dispatch_uid=uid)
