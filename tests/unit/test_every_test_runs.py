"""The test command's plugin turns a skip into a failure; a plain pytest run keeps the skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _pytest(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(path),
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(path.parent),
            "-c",
            os.devnull,
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_test_that_skips_for_a_missing_tool_fails_the_test_command(tmp_path):
    # Given a test that skips because a tool is missing, beside one that passes
    test = tmp_path / "test_needs_a_tool.py"
    test.write_text(
        "import pytest\n\n"
        "def test_needs_a_tool():\n"
        "    pytest.skip('sometool is missing')\n\n"
        "def test_passes():\n"
        "    pass\n"
    )

    # When it runs under the test command's plugin, and without it
    strict = _pytest(test, "-p", "tests.support.every_test_runs")
    plain = _pytest(test)

    # Then the test command fails, naming the reason; plain pytest reports a skip
    assert strict.returncode == 1, strict.stdout
    assert "1 failed, 1 passed" in strict.stdout and "sometool is missing" in strict.stdout
    assert plain.returncode == 0 and "1 passed, 1 skipped" in plain.stdout, plain.stdout
