"""Peak memory of a streamed export: 1,000,000 rows against a 10,000-row baseline, same run.

Makes two databases (10,000 and 1,000,000 orders, filled by ``generate_series``), then runs the
real export job (``jobs.run_job`` of an ``export`` Job record: server-side cursor, chunks into
the storage backend, progress on the record) in a fresh process per size, and reads that
process's RSS before the export and its peak afterwards (``VmHWM`` in /proc/self/status, and
``ru_maxrss``). Constant memory means the 1M-row peak is about the 10k-row one, though the file
is 100 times bigger.

usage: python -m bench.export_memory [--rows 1000000] [--baseline-rows 10000] [--format csv]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

BASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/"


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def fill(url: str, rows: int) -> None:
    from sqlalchemy import create_engine, text

    from shop import dbadmin

    dbadmin.create_database(url, recreate=True)
    dbadmin.migrate(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO users (email, full_name) VALUES ('bench@example.test', 'Bench')")
        )
        conn.execute(
            text(
                "INSERT INTO orders (user_id, status, total_cents, placed_at) "
                "SELECT 1, 'completed', (g * 37) % 100000, now() - (g || ' seconds')::interval "
                "FROM generate_series(1, :n) g"
            ),
            {"n": rows},
        )
        conn.execute(text("ANALYZE orders"))
    engine.dispose()


def child(fmt: str) -> None:
    """Run one export in this (fresh) process and print its figures as JSON."""
    import shop.reports.exports  # noqa: F401  (registers the export job type)
    from jobcore.db import session_scope
    from shop import job_records as jobs
    from shop.models import Job

    before_kb = _status_kb("VmRSS")
    with session_scope() as s:
        job_id = jobs.create_job(s, "export", {"kind": "orders", "format": fmt}).id
    started = time.monotonic()
    status = jobs.run_job(job_id)
    seconds = time.monotonic() - started
    with session_scope() as s:
        job = s.get(Job, job_id)
        result, progress = job.result, job.progress
    print(
        json.dumps(
            {
                "status": status,
                "progress": progress,
                "rows": result["rows"],
                "bytes": result["size"],
                "sha256": result["sha256"],
                "seconds": round(seconds, 2),
                "rss_before_kb": before_kb,
                "peak_kb": _status_kb("VmHWM"),
                "ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )


def measure(url: str, fmt: str, storage_dir: str) -> dict[str, object]:
    env = {
        **os.environ,
        "SHOPJOBS_DATABASE_URL": url,
        "SHOPJOBS_STORAGE_URL": f"file://{storage_dir}",
        "SHOPJOBS_LOG_LEVEL": "WARNING",
    }
    out = subprocess.run(
        [sys.executable, "-m", "bench.export_memory", "--child", "--format", fmt],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if out.returncode != 0:
        raise SystemExit(f"export run failed:\n{out.stderr[-3000:]}")
    figures: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--baseline-rows", type=int, default=10_000)
    ap.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.format)
        return
    from shop import dbadmin

    runs = {}
    with tempfile.TemporaryDirectory(prefix="export-bench-") as storage_dir:
        for label, rows in (("baseline", a.baseline_rows), ("large", a.rows)):
            url = f"{BASE_URL}shopjobs_bench_export_{label}"
            t = time.monotonic()
            fill(url, rows)
            print(f"filled {rows:,} orders in {time.monotonic() - t:.1f}s", flush=True)
            try:
                runs[label] = measure(url, a.format, storage_dir)
            finally:
                dbadmin.drop_database(url)
            r = runs[label]
            print(
                f"RESULT {label} rows={r['rows']} bytes={r['bytes']} seconds={r['seconds']} "
                f"rss_before_mb={r['rss_before_kb'] / 1024:.1f} peak_rss_mb={r['peak_kb'] / 1024:.1f} "
                f"ru_maxrss_mb={r['ru_maxrss_kb'] / 1024:.1f} progress={r['progress']}",
                flush=True,
            )
    base, large = runs["baseline"], runs["large"]
    growth = (large["peak_kb"] - base["peak_kb"]) / 1024
    print(
        f"SUMMARY rows x{large['rows'] / base['rows']:.0f}, file x{large['bytes'] / base['bytes']:.0f}; "
        f"peak RSS {base['peak_kb'] / 1024:.1f} MB -> {large['peak_kb'] / 1024:.1f} MB "
        f"(ratio {large['peak_kb'] / base['peak_kb']:.2f}, growth {growth:+.1f} MB); "
        f"peak over the process's RSS before the export: {(large['peak_kb'] - large['rss_before_kb']) / 1024:.1f} MB"
    )


if __name__ == "__main__":
    main()
