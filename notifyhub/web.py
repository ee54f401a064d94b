"""The web process (the Procfile's `web` line): NotifyHub under the ASGI server `ASGI_SERVER` names.

`make bench` runs both on the same scenarios (bench/results/latest.md): uvicorn spends about half
daphne's CPU per delivered notification and delivers a 1,000-member fan-out about 30% sooner, so it is the
default; `ASGI_SERVER=daphne` selects daphne (supported and tested alike: `each_server` in the tests; it is
also the development server behind `manage.py runserver`), no code change. Both serve the same
`notifyhub.asgi:application` on `WEB_BIND:PORT`, and neither reads proxy headers: the application believes
X-Forwarded-* only from the proxies TRUSTED_PROXIES lists (notifyhub/proxies.py), the same way under both.
uvicorn can serve the port from `WEB_CONCURRENCY` processes (its workers) to use more than one core; daphne
has no such option, so settings refuse WEB_CONCURRENCY > 1 with it.
"""

import os
import sys

APPLICATION = "notifyhub.asgi:application"


def server_command(
    server: str, *, bind: str, port: int, processes: int = 1, per_message_deflate: bool = False
) -> list[str]:
    """The command line that serves NotifyHub with `server` on `bind:port` from `processes` processes.

    `per_message_deflate`: whether uvicorn accepts the compression clients offer (see WS_PER_MESSAGE_DEFLATE);
    daphne never does.
    """
    if server == "daphne":
        if processes != 1:
            raise ValueError("daphne serves from one process")
        return [sys.executable, "-m", "daphne", "--bind", bind, "--port", str(port), APPLICATION]
    if server == "uvicorn":
        # uvicorn would trust proxy headers from 127.0.0.1 (or FORWARDED_ALLOW_IPS) before the application sees them.
        # With more than one worker it binds the port, then spawns (not forks) each worker, which imports
        # notifyhub.asgi afresh: every worker has its own connection pool, channel-layer client and ack batcher.
        argv = [sys.executable, "-m", "uvicorn", APPLICATION, "--host", bind, "--port", str(port)]
        argv += ["--ws-per-message-deflate", "true" if per_message_deflate else "false"]
        return [*argv, "--workers", str(processes), "--no-proxy-headers", "--no-server-header"]
    raise ValueError(f"unknown ASGI server {server!r}")


def main() -> None:
    # Settings read ASGI_SERVER, WEB_BIND and PORT (and refuse a bad value or a missing SECRET_KEY with one
    # line) before the server starts; the server then loads them again in its own process.
    from notifyhub import settings

    argv = server_command(
        settings.ASGI_SERVER,
        bind=settings.WEB_BIND,
        port=settings.WEB_PORT,
        processes=settings.WEB_CONCURRENCY,
        per_message_deflate=settings.WS_PER_MESSAGE_DEFLATE,
    )
    os.execv(argv[0], argv)  # noqa: S606 - replace this process: signals go straight to the server


if __name__ == "__main__":
    main()
