"""``shopjobs settings``: every setting, its default and its meaning (the README's table)."""

from __future__ import annotations

import argparse
from typing import Any

from jobcore.cli.output import emit
from shop.settings import describe


def register(groups: Any) -> None:
    parser = groups.add_parser("settings", help="configuration variables; checks the environment")
    parser.add_argument("--markdown", action="store_true", help="as a Markdown table")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # the entry point built the settings: a bad value failed there, naming the variable
    rows = [{"variable": v, "default": d, "meaning": m} for v, d, m in describe()]
    if args.markdown:
        print("| variable | default | meaning |\n|---|---|---|")
        for r in rows:
            print(f"| `{r['variable']}` | `{r['default']}` | {r['meaning']} |")
        return 0
    emit(rows, as_json=args.json)
    return 0
