"""The hub's parts of /healthz (registered in NotificationsConfig.ready(); see core/health.py)."""

from core.health import one_line_reason
from notifications import layer
from notifications.hub.router import process_router_problem


def check_channel_layer(timeout: float = 2.0) -> str | None:
    """Return None when a message makes a round trip through the channel layer, else a one-line reason."""
    try:
        layer.layer_round_trip(timeout)
    except TimeoutError:
        return f"no round trip within {timeout:g} s"
    except Exception as error:
        return one_line_reason(error)
    return None


def check_hub_router() -> str | None:
    """Return None when this process's hub router receives (or it has none: no hub connection yet), else why not."""
    return process_router_problem()
