"""A small WebSocket client for trying the hub from a shell (docs/protocol.md, "Try it in two minutes").

    ACCESS=<access token> .venv/bin/python docs/ws_client.py "$BASE/ws/notifications/" [--send FRAME]... [--ack]
        [--seconds N]

It prints every frame the server sends, one per line. The token is read from $ACCESS and sent in the
Authorization header, so it is never on screen, in the URL or in the process list. `--send` frames go out
after the replay (`replay_complete`), `--ack` acknowledges every notification as it arrives, and lines
typed at a terminal are sent as frames. It stays connected `--seconds` (by default until Ctrl-C or Ctrl-D).
"""

import argparse
import asyncio
import json
import os
import sys

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

NORMAL_CLOSE_CODES = (1000, 1001)


def websocket_url(url: str) -> str:
    """http(s)://… as ws(s)://…, so the docs' `$BASE` works as is."""
    for http, ws in (("http://", "ws://"), ("https://", "wss://")):
        if url.startswith(http):
            return ws + url.removeprefix(http)
    return url


async def print_frames(connection: ClientConnection, *, send_after_replay: list[str], ack: bool) -> None:
    """Print each frame as it arrives, until the server closes; answer notifications and the replay's end as asked."""
    try:
        async for text in connection:
            print(text, flush=True)
            frame = json.loads(text)
            if ack and frame.get("type") == "notification":
                await connection.send(json.dumps({"type": "ack", "id": frame["id"]}))
            if frame.get("type") == "replay_complete":
                for frame_text in send_after_replay:
                    await connection.send(frame_text)
    except ConnectionClosed:
        pass  # the caller says how


async def send_typed_lines(connection: ClientConnection) -> None:
    """Send each line typed at the terminal as one frame, until Ctrl-D."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes] = asyncio.Queue()
    stdin = sys.stdin.fileno()
    loop.add_reader(stdin, lambda: chunks.put_nowait(os.read(stdin, 65536)))
    try:
        while chunk := await chunks.get():
            for line in chunk.decode().splitlines():
                if line.strip():
                    await connection.send(line.strip())
    finally:
        loop.remove_reader(stdin)


async def run(url: str, *, token: str, send_after_replay: list[str], ack: bool, seconds: float | None) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    async with connect(websocket_url(url), additional_headers=headers) as connection:
        tasks = [asyncio.create_task(print_frames(connection, send_after_replay=send_after_replay, ack=ack))]
        if sys.stdin.isatty():
            tasks.append(asyncio.create_task(send_typed_lines(connection)))
        done, pending = await asyncio.wait(tasks, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in done:
            task.result()
        if tasks[0] in done:  # the server closed the connection
            print(f"closed by the server: {connection.close_code} {connection.close_reason}".rstrip(), flush=True)
            return 0 if connection.close_code in NORMAL_CLOSE_CODES else 1
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the hub's URL, e.g. http://127.0.0.1:8000/ws/notifications/")
    parser.add_argument("--send", action="append", default=[], metavar="FRAME", help="a frame to send after replay")
    parser.add_argument("--ack", action="store_true", help="acknowledge every notification")
    parser.add_argument("--seconds", type=float, help="close after this many seconds")
    args = parser.parse_args()
    token = os.environ.get("ACCESS")
    if not token:
        sys.exit("Set ACCESS to an access token first (docs/api.md, Authentication).")
    try:
        status = asyncio.run(
            run(args.url, token=token, send_after_replay=args.send, ack=args.ack, seconds=args.seconds)
        )
    except KeyboardInterrupt:
        status = 0
    except (OSError, ConnectionClosed) as error:
        sys.exit(f"{type(error).__name__}: {error}")
    sys.exit(status)


if __name__ == "__main__":
    main()
