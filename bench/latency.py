"""Latency from enqueue to start at a steady rate: the shopjobs stack against bare Dramatiq.

Each round, for each side in turn: a 2 x 8 ``dramatiq`` worker group (bare Dramatiq with
confirms, or the shopjobs stack as ``bench.run_shopjobs`` runs it), warmed up, then a sender
process publishes ``--rate`` messages/s for ``--seconds`` (``--senders`` threads, each paced;
the shopjobs side sends with its own broker, so its ledger rows are written as a producer's
are). The actor records ``start - send time``; p50 and p99 per side, medians over rounds, and
the ratios shopjobs/bare. Goal of [12]: p50 not worse than 1.5x bare.

usage: python -m bench.latency [--rate 500] [--seconds 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time

from bench import _anchor

OUT = "/tmp/bench_latency"
DB_URL = os.environ.get(
    "BENCH_SHOPJOBS_DB", "postgresql+psycopg2://postgres@127.0.0.1:5432/shopjobs_bench"
)


def _latencies(side: str, run: str) -> list[float]:
    directory = os.path.join(OUT, side)
    found: list[float] = []
    for name in os.listdir(directory) if os.path.isdir(directory) else []:
        with open(os.path.join(directory, name)) as fh:
            for line in fh:
                tag, _, lag = line.partition(" ")
                if tag == run and lag.strip():
                    found.append(float(lag))
    return found


def _clear(side: str) -> None:
    shutil.rmtree(os.path.join(OUT, side), ignore_errors=True)


def send(side: str, rate: float, seconds: float, senders: int, run: str) -> None:
    """The sender process: ``rate`` msgs/s for ``seconds``, paced per thread."""
    from bench.latency_actors import started

    per_thread = rate / senders
    count = int(per_thread * seconds)

    def pace() -> None:
        next_at = time.perf_counter()
        for _ in range(count):
            started.send(time.time(), run)
            next_at += 1 / per_thread
            pause = next_at - time.perf_counter()
            if pause > 0:
                time.sleep(pause)

    threads = [threading.Thread(target=pace) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if side == "shop":
        import broker

        broker.flush_ledger()


def _env(side: str) -> dict[str, str]:
    return {
        **os.environ,
        "BENCH_LATENCY_SIDE": side,
        "BENCH_LATENCY_DIR": os.path.join(OUT, side),
        "SHOPJOBS_DATABASE_URL": DB_URL,
        "SHOPJOBS_LOG_LEVEL": os.environ.get("SHOPJOBS_LOG_LEVEL", "WARNING"),
    }


def _wait_for(side: str, run: str, n: int, worker: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(_latencies(side, run)) < n:
        if worker.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{side}: {len(_latencies(side, run))}/{n} started")
        time.sleep(0.1)


def one(side: str, rate: float, seconds: float, senders: int) -> tuple[float, float, int]:
    """(p50 ms, p99 ms, n) of one side's run."""
    py, env = sys.executable, _env(side)
    subprocess.run(
        [py, "-c", f"import benchlib; benchlib.purge('bench_latency_{side}')"],
        cwd=_anchor.ANCHOR_DIR,
        env=env,
        check=True,
    )
    _clear(side)
    dramatiq_bin = os.path.join(os.path.dirname(py), "dramatiq")
    worker = subprocess.Popen(
        [dramatiq_bin, "bench.latency_actors", "-p", "2", "-t", "8", "-Q", f"bench_latency_{side}"],
        cwd=_anchor.ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        warm = [py, "-m", "bench.latency", "--send", side, "--rate", "50", "--seconds", "2"]
        subprocess.run([*warm, "--run", "warm"], cwd=_anchor.ROOT, env=env, check=True)
        _wait_for(side, "warm", 100, worker, 120)
        cmd = [py, "-m", "bench.latency", "--send", side, "--rate", str(rate), "--run", "main"]
        cmd += ["--seconds", str(seconds), "--senders", str(senders)]
        subprocess.run(cmd, cwd=_anchor.ROOT, env=env, check=True)
        n = int(rate / senders * seconds) * senders
        _wait_for(side, "main", n, worker, 120)
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, 9)
            worker.wait()
    lat = sorted(_latencies(side, "main"))
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
    print(
        f"RESULT name=latency_{side} n={len(lat)} rate={rate} p50_ms={q(0.5):.2f}"
        f" p90_ms={q(0.9):.2f} p99_ms={q(0.99):.2f} max_ms={lat[-1] * 1000:.1f}",
        flush=True,
    )
    return q(0.5), q(0.99), len(lat)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--send", choices=["bare", "shop"], help=argparse.SUPPRESS)
    ap.add_argument("--run", default="main", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.send:
        send(a.send, a.rate, a.seconds, a.senders, a.run)
        return
    from shop import dbadmin

    dbadmin.create_database(DB_URL)
    dbadmin.migrate(DB_URL)
    runs: dict[str, list[tuple[float, float, int]]] = {"bare": [], "shop": []}
    for k in range(a.rounds):
        print(f"== latency round {k + 1}/{a.rounds}", flush=True)
        for side in ("bare", "shop"):
            runs[side].append(one(side, a.rate, a.seconds, a.senders))
    med = {s: [statistics.median(r[i] for r in runs[s]) for i in (0, 1)] for s in runs}
    (b50, b99), (s50, s99) = med["bare"], med["shop"]
    print(
        f"SUMMARY latency rate={a.rate:.0f} bare_p50_ms={b50:.2f} bare_p99_ms={b99:.2f}"
        f" shop_p50_ms={s50:.2f} shop_p99_ms={s99:.2f} p50_ratio={s50 / b50:.2f}"
        f" p99_ratio={s99 / b99:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
