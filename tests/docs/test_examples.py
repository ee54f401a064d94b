"""The shell examples in README.md and docs/*.md run as written against what `make run` starts.

Each page's ```sh blocks run in order in one bash (`set -euo pipefail`, PORT set, the repository as the
working directory), so every command must succeed; a `# => ` line in a block is a line the block must print,
in order (whitespace does not count, `…` matches anything). A block whose first line is `# not run: <why>`
is left out and listed as skipped with that reason; a block tagged bash, shell or console is refused, so no
example escapes by its tag. The stack is `make run`'s for this purpose: a database of its own, migrated and
seeded with `manage.py seed_demo`; the test Redis; the Procfile's web line with DEBUG on, as .env.example has
it. No Celery worker: no example states an outcome that needs one (a push), and pushes only queue meanwhile.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
from django.conf import settings

from tests.support.presence_registry import settle_presence_registry
from tests.support.servers import REPO_ROOT, WebProcess, child_environment, database_url

PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
RUN_TAG = "sh"
REFUSED_TAGS = {"bash", "shell", "console", "zsh"}
NOT_RUN = re.compile(r"#\s*not run:\s*(?P<reason>.+)")
EXPECTED = re.compile(r"^\s*# => ?(?P<line>.*)$")
BLOCK_MARKER = "@@@ docs example block {}"
PAGE_TIMEOUT = 60


@dataclass(frozen=True)
class CodeBlock:
    page: Path
    line: int  # of the opening fence
    tag: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO_ROOT)}:{self.line}"

    @property
    def not_run_reason(self) -> str | None:
        first_line = self.code.lstrip("\n").partition("\n")[0]
        match = NOT_RUN.fullmatch(first_line.strip())
        return match["reason"] if match else None

    @property
    def expected_lines(self) -> list[str]:
        return [match["line"] for line in self.code.splitlines() if (match := EXPECTED.match(line))]


def code_blocks(page: Path) -> list[CodeBlock]:
    """Every fenced block of a Markdown page, with the tag after its opening ```."""
    blocks, opening, tag, lines = [], None, "", []
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        if opening is None and line.startswith("```"):
            opening, tag, lines = number, line[3:].strip(), []
        elif opening is not None and line.strip() == "```":
            blocks.append(CodeBlock(page, opening, tag, "\n".join(lines)))
            opening = None
        elif opening is not None:
            lines.append(line)
    return blocks


def runnable_blocks(page: Path) -> list[CodeBlock]:
    return [block for block in code_blocks(page) if block.tag == RUN_TAG and block.not_run_reason is None]


ALL_BLOCKS = [block for page in PAGES for block in code_blocks(page)]
RUN_PAGES = [page for page in PAGES if runnable_blocks(page)]
NOT_RUN_BLOCKS = [block for block in ALL_BLOCKS if block.tag == RUN_TAG and block.not_run_reason]


def line_pattern(expected: str) -> re.Pattern:
    """A `# =>` line as a pattern over one output line: whitespace removed on both sides, `…` for anything. An HTTP
    header's name matches in any case, as HTTP says (daphne sends `Location`, uvicorn `location`)."""
    compact = re.sub(r"\s+", "", expected)
    header = re.match(r"[A-Za-z][A-Za-z0-9-]*:", compact)
    name, rest = (header.group(0), compact[header.end() :]) if header else ("", compact)
    pattern = ".*".join(re.escape(part) for part in rest.split("…"))
    return re.compile(f"(?i:{re.escape(name)}){pattern}" if name else pattern)


def missing_output(expected_lines: list[str], output: str) -> str | None:
    """The first expected line the output lacks (each matched after the previous one), or None."""
    lines = [re.sub(r"\s+", "", line) for line in output.splitlines()]
    position = 0
    for expected in expected_lines:
        pattern = line_pattern(expected)
        while position < len(lines) and not pattern.fullmatch(lines[position]):
            position += 1
        if position == len(lines):
            return expected
        position += 1
    return None


def recreate_database(url: str, *, create: bool = True) -> None:
    """Drop the database `url` names (its connections too), and create it afresh."""
    parts = psycopg.conninfo.conninfo_to_dict(url)
    name = psycopg.sql.Identifier(parts.pop("dbname"))
    with psycopg.connect(psycopg.conninfo.make_conninfo(**parts, dbname="postgres"), autocommit=True) as admin:
        admin.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        if create:
            admin.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(name))


@pytest.fixture(scope="module")
def demo_stack(tmp_path_factory) -> WebProcess:
    """`make run` in miniature: migrate, seed_demo, the Procfile's web line (DEBUG on) on a free port."""
    server, _, test_database = database_url().rpartition("/")
    demo_database_url = f"{server}/{test_database.removeprefix('test_')}_docs_examples"
    recreate_database(demo_database_url)
    redis_client = redis.Redis.from_url(settings.REDIS_URL)
    redis_client.flushdb()  # the token endpoint's rate limit counts per address: start from zero
    settle_presence_registry(redis_client)
    redis_client.close()

    overrides = {"DATABASE_URL": demo_database_url, "DEBUG": "true"}
    for command in (["migrate", "--noinput", "--verbosity", "0"], ["seed_demo"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=REPO_ROOT,
            env=child_environment(overrides),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"manage.py {command[0]} failed:\n{done.stdout}{done.stderr}"
    web = WebProcess("docs-web", log_path=tmp_path_factory.mktemp("docs") / "web.log", env=overrides).start()
    yield web
    web.stop()
    recreate_database(demo_database_url, create=False)


def run_page(blocks: list[CodeBlock], port: int) -> tuple[int, str]:
    """Run the blocks in order in one bash; the exit status and the output (stderr included)."""
    script = ["set -euo pipefail"]
    for index, block in enumerate(blocks):
        script += [f"printf '\\n%s\\n' '{BLOCK_MARKER.format(index)}'", block.code]
    script.append(f"printf '\\n%s\\n' '{BLOCK_MARKER.format('end')}'")
    environment = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
    environment["PORT"] = str(port)
    process = subprocess.Popen(
        ["bash", "-c", "\n".join(script)],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group: a timeout stops the background clients too
    )
    try:
        output, _ = process.communicate(timeout=PAGE_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        return -1, output + f"\n(timed out after {PAGE_TIMEOUT} s)"
    return process.returncode, output


def outputs_by_block(output: str) -> dict[str, str]:
    """{block index as text, or "end": what was printed from its start to the next block's}."""
    parts = re.split(r"^@@@ docs example block (\w+)$", output, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.parametrize("page", RUN_PAGES, ids=lambda page: str(page.relative_to(REPO_ROOT)))
def test_examples_run_as_written(demo_stack, page):
    blocks = runnable_blocks(page)
    status, output = run_page(blocks, demo_stack.port)
    outputs = outputs_by_block(output)
    for index, block in enumerate(blocks):
        block_output = outputs.get(str(index))
        assert block_output is not None, f"{block.where} never ran; the output so far:\n{output[-3000:]}"
        if str(index + 1) not in outputs and "end" not in outputs:
            pytest.fail(f"{block.where} failed (exit status {status}):\n{block.code}\n--- output ---\n{block_output}")
        missing = missing_output(block.expected_lines, block_output)
        assert missing is None, f"{block.where} did not print\n  {missing}\n--- output ---\n{block_output}"
    assert status == 0, output[-3000:]


def test_only_make_targets_that_start_their_own_stack_are_marked_not_run():
    """A block the suite does not run must say why, and may only hold `make` commands (run, test, bench, soak):
    everything a reader pastes against `make run` is run above."""
    assert NOT_RUN_BLOCKS, "the README's make commands are marked `# not run: <why>`"
    for block in NOT_RUN_BLOCKS:
        assert block.not_run_reason.strip(), f"{block.where}: say why after `# not run:`"
        commands = [line for line in block.code.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        assert commands and all(line.startswith("make ") for line in commands), f"{block.where}: {commands}"


def test_shell_blocks_are_tagged_sh():
    refused = [block.where for block in ALL_BLOCKS if block.tag in REFUSED_TAGS]
    assert not refused, f"tag shell examples `sh` (run) or start them with `# not run: <why>`: {refused}"


def test_expected_output_matching():
    output = 'HTTP/1.1 201 Created\nLocation: /api/notifications/7c1e/deliveries/\n{"id":"7c1e","count":4}\n'
    assert missing_output(["HTTP/1.1 201 Created", '{"id": "…", "count": 4}'], output) is None
    assert missing_output(['{"id": "…", "count": 5}'], output) == '{"id": "…", "count": 5}'
    in_the_wrong_order = ['{"id": "…", "count": 4}', "HTTP/1.1 201 Created"]
    assert missing_output(in_the_wrong_order, output) == "HTTP/1.1 201 Created"
