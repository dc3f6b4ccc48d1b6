"""What writing metrics in batches is worth: the full stack's drain with metrics written on every
update (``SHOPJOBS_METRICS_FLUSH_MS=0``, prometheus-client's own multiprocess value) against
batches (the default, once a second), alternating rounds of ``bench.run_shopjobs``.

usage: python -m bench.metrics_batching [--n 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

from bench import _anchor
from bench.all import fields


def drain(n: int, flush_ms: str) -> float:
    env = {**os.environ, "SHOPJOBS_METRICS_FLUSH_MS": flush_ms}
    out = subprocess.run(
        [sys.executable, "-m", "bench.run_shopjobs", str(n)],
        cwd=_anchor.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if out.returncode != 0:
        sys.stderr.write(out.stdout[-2000:] + out.stderr[-3000:])
        raise SystemExit("bench.run_shopjobs failed")
    rate = float(fields(out.stdout, "RESULT")["msgs_per_s"])
    print(f"   flush_ms={flush_ms:>4}  drain {rate:.0f} msgs/s", flush=True)
    return rate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    each, batched = [], []
    for k in range(a.rounds):
        print(f"== round {k + 1}/{a.rounds}", flush=True)
        each.append(drain(a.n, "0"))
        batched.append(drain(a.n, "1000"))
    e, b = statistics.median(each), statistics.median(batched)
    per_round = [round(x / y, 2) for x, y in zip(batched, each, strict=True)]
    print(
        f"SUMMARY metrics_batching every_update_median={e:.0f} batched_median={b:.0f} "
        f"ratio={b / e:.2f} per_round={per_round}"
    )


if __name__ == "__main__":
    main()
