"""Reading a running worker's /metrics over HTTP, as Prometheus does, and its per-process files."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from jobcore.metrics import multiproc


def scrape(port: int) -> str:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    response.raise_for_status()
    return response.text


def try_scrape(port: int) -> str | None:
    try:
        return scrape(port)
    except httpx.HTTPError:
        return None


def samples(text: str, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """Every sample called ``name`` whose labels include ``labels``."""
    found = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                found.append((sample.labels, sample.value))
    return found


def total(text: str, name: str, **labels: str) -> float:
    return sum(value for _, value in samples(text, name, **labels))


def instance_dir(worker_pid: int) -> str:
    return multiproc.instance_dir(worker_pid)


def per_process(worker_pid: int, metric: str, **labels: str) -> dict[int, float]:
    """Sum of ``metric`` per worker process, read from the instance's counter files."""
    out: dict[int, float] = {}
    for path in glob.glob(os.path.join(instance_dir(worker_pid), "counter_*.db")):
        pid = int(path.rsplit("_", 1)[1].removesuffix(".db"))
        for key, value, _, _ in MmapedDict.read_all_values_from_file(path):
            _, name, found, _ = json.loads(key)
            if name == metric and all(found.get(k) == v for k, v in labels.items()):
                out[pid] = out.get(pid, 0.0) + value
    return out


def promtool() -> str:
    """The promtool binary; a test without it fails under CI=true and is skipped elsewhere.

    Looked for on PATH, then beside the venv's python (where scripts/install-promtool.sh puts it).
    """
    found = shutil.which("promtool") or shutil.which(
        "promtool", path=os.path.dirname(sys.executable)
    )
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("promtool is missing (CI=true): run scripts/install-promtool.sh")
    pytest.skip("promtool is missing: bash scripts/install-promtool.sh installs it")


def promtool_check(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), "check", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
