"""Printing rows as an aligned table or as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def emit(
    rows: Sequence[dict[str, Any]], *, as_json: bool, columns: Sequence[str] | None = None
) -> None:
    if as_json:
        print(json.dumps(list(rows), indent=2, default=str))
        return
    if not rows:
        print("(none)")
        return
    columns = list(columns or rows[0].keys())
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)))
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))


def emit_record(record: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(record, indent=2, default=str))
        return
    width = max(len(k) for k in record)
    for key, value in record.items():
        text = "" if value is None else str(value)
        if "\n" in text:
            print(f"{key.ljust(width)}  |")
            for line in text.rstrip().splitlines():
                print(f"{'':{width}}    {line}")
        else:
            print(f"{key.ljust(width)}  {text}")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    text = str(value).replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."
