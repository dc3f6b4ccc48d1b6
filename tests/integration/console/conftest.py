"""The console as a real process, Debian's chromium driven by Playwright, users made by the CLI.

The browser is /usr/bin/chromium (scripts/install-chromium.sh installs it; Playwright downloads
nothing). Each test gets a fresh browser context and a folder for its screenshots under
``test-results/console/<test>`` (``SHOPJOBS_TEST_OUTPUT`` moves the base).
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.processes import ROOT
from programs.cli import main as cli

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "a long test password"
CONSOLE_MODULES = ("tests.support.faulty_actors",)


class ConsoleProcess:
    """``shopjobs console --port 0`` on this run's database and vhost, stopped by its PID."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115  (held open for the process's life)
        command = [
            os.path.join(os.path.dirname(sys.executable), "shopjobs"),
            "console",
            "--port",
            "0",
        ]
        for module in CONSOLE_MODULES:
            command += ["--import", module]
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={**os.environ, "SHOPJOBS_CONSOLE_LIVE_POLL_S": "0.5", "PYTHONPATH": ROOT},
            start_new_session=True,
        )
        self.url = self._wait_url()

    def _wait_url(self) -> str:
        found: list[str] = []

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                match = re.search(r"console listening on (http://\S+?)/?$", line.strip())
                if match:
                    found.append(match[1])
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(60)
        if not found:
            self.stop()
            raise RuntimeError(f"console did not start:\n{self.log_path.read_text()[-3000:]}")
        return found[0]

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


@pytest.fixture(scope="session")
def console_process(
    infrastructure: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConsoleProcess]:
    process = ConsoleProcess(tmp_path_factory.mktemp("console") / "console.log")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is missing: run scripts/install-chromium.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture()
def shots(request: pytest.FixtureRequest) -> Path:
    """This test's output folder: every page it visits is screenshot here."""
    base = Path(os.environ.get("SHOPJOBS_TEST_OUTPUT", os.path.join(ROOT, "test-results")))
    folder = base / "console" / re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder


def make_user(name: str, role: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``shopjobs console users add NAME --role ROLE --password-stdin``, as an operator would."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert cli(["console", "users", "add", name, "--role", role, "--password-stdin"]) == 0


class Browser:
    """One logged-in browser context, that screenshots every page it lands on."""

    def __init__(self, context: Any, base: str, shots: Path) -> None:
        self.context, self.base, self.shots = context, base, shots
        self.page = context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self._n = 0

    def goto(self, path: str) -> Any:
        response = self.page.goto(self.base + path)
        self.shot(path)
        return response

    def shot(self, label: str) -> Path:
        self._n += 1
        name = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-")[:60] or "overview"
        path = self.shots / f"{self._n:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def login(self, name: str, password: str = PASSWORD) -> None:
        self.page.goto(self.base + "/login")
        self.page.fill("input[name=name]", name)
        self.page.fill("input[name=password]", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(self.base + "/")
        self.shot("after-login")


@pytest.fixture()
def browse(
    chromium: Any,
    console_process: ConsoleProcess,
    clean: None,
    shots: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., Browser]]:
    """``browse(name, role)``: a user made by the CLI, logged in, in a fresh browser context."""
    contexts: list[Any] = []

    def open_as(name: str, role: str) -> Browser:
        make_user(name, role, monkeypatch)
        context = chromium.new_context(viewport={"width": 1360, "height": 900})
        contexts.append(context)
        browser = Browser(context, console_process.url, shots)
        browser.login(name)
        return browser

    yield open_as
    for context in contexts:
        context.close()
