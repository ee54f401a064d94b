"""The pages' static files: every one a template names exists, and every page script parses as an ES module."""

import re
import subprocess
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted((ROOT / "templates" / "web").glob("*.html"))
SCRIPTS = sorted((ROOT / "web" / "static" / "web").glob("*.js"))


def test_every_static_file_a_page_names_is_served():
    named = {name for template in TEMPLATES for name in re.findall(r"{% static '(web/[^']+)' %}", template.read_text())}
    assert {"web/web.css", "web/header.js", "web/inbox.js", "web/document.js"} <= named
    assert [name for name in sorted(named) if finders.find(name) is None] == []


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda script: script.name)
def test_page_scripts_parse_as_modules(script, tmp_path):
    # `node --check` reads .mjs as a module; the bare "notifyhub" import is resolved only when run, never here.
    module = tmp_path / f"{script.stem}.mjs"
    module.write_text(script.read_text())
    result = subprocess.run(["node", "--check", str(module)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_page_scripts_import_only_each_other_and_the_library():
    for script in SCRIPTS:
        for source in re.findall(r'^import .* from "([^"]+)";', script.read_text(), flags=re.MULTILINE):
            assert source == "notifyhub" or (source.startswith("./") and (script.parent / source).is_file()), (
                script.name,
                source,
            )
