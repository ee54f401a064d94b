"""The official JavaScript client, `@microsoft/signalr` on Node, driven from a test.

`tests/support/signalr-node/` is a small Node package (package.json and
package-lock.json pin the client); `make test` installs it with `npm ci`.
`driver.mjs` there reads JSON commands on stdin and reports on stdout:

    with NodeSignalRClient(tmp_path) as client:
        started = client.start(f"http://127.0.0.1:{hub_server.port}/hubs/workflow", token, targets=["DocumentApproved"])
        event = client.next("event")
        result = client.invoke("MarkRead", notification_id)   # {"kind": "result", ...} or {"kind": "error", ...}
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from itertools import count
from pathlib import Path

from tests.support.servers import REPO_ROOT

PACKAGE_DIR = REPO_ROOT / "tests" / "support" / "signalr-node"
TIMEOUT = 20


class NodeSignalRClient:
    def __init__(self, log_dir: Path) -> None:
        node = shutil.which("node")
        assert node, "Node.js is needed for the @microsoft/signalr tests"
        assert (PACKAGE_DIR / "node_modules" / "@microsoft" / "signalr").is_dir(), "run `make test` (npm ci) first"
        self.log_path = log_dir / "signalr-node.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in close())
        self.process = subprocess.Popen(
            [node, "driver.mjs"],
            cwd=PACKAGE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self.reports: queue.Queue[dict] = queue.Queue()
        self.history: list[dict] = []  # every report, in order
        self._unclaimed: list[dict] = []
        self._ids = count(1)
        threading.Thread(target=self._read_reports, daemon=True).start()

    def _read_reports(self) -> None:
        for line in self.process.stdout:
            self.reports.put(json.loads(line))

    def __enter__(self) -> NodeSignalRClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def command(self, op: str, **fields) -> None:
        self.process.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.process.stdin.flush()

    def next(self, *kinds: str, where: Callable[[dict], bool] = lambda report: True, timeout=TIMEOUT) -> dict:
        """The first report not returned yet whose kind is one of `kinds` and that matches `where`."""
        for report in self._unclaimed:
            if report["kind"] in kinds and where(report):
                self._unclaimed.remove(report)
                return report
        deadline = time.monotonic() + timeout
        while True:
            try:
                report = self.reports.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                raise AssertionError(f"no {kinds} report; got {self.history}; log:\n{self.log_text()}") from None
            self.history.append(report)
            if report["kind"] in kinds and where(report):
                return report
            self._unclaimed.append(report)

    def start(self, url: str, token: str, **options) -> dict:
        """Start the connection; the `started` or `start_failed` report."""
        self.command("start", url=url, token=token, **options)
        return self.next("started", "start_failed")

    def invoke(self, method: str, *args) -> dict:
        """`connection.invoke(method, ...args)`: the `result` or `error` report."""
        invocation_id = str(next(self._ids))
        self.command("invoke", id=invocation_id, method=method, args=list(args))
        return self.next("result", "error", where=lambda report: report["id"] == invocation_id)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.command("stop")
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
