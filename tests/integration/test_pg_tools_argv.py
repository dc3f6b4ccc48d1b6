"""pg_dump and pg_restore get the database password through their environment, never argv.

Every user of a host can read any process's argv (``ps``, /proc/<pid>/cmdline). The real tools
run behind wrappers that record what they were started with, then ``exec`` the tool itself.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

import broker  # noqa: F401  (builds and installs the settings, configures the engine)
from jobcore.db import session_scope
from shop.ops import pg_tools
from tests.support.factories import make_product

CANARY = "Pg-Argv-Canary-7319"
WRAPPER = """#!/bin/sh
python3 -c 'import json, os, sys
print(json.dumps({{"argv": sys.argv[1:], "pgpassword": os.environ.get("PGPASSWORD")}}))' "$@" >> {log}
exec /usr/bin/{tool} "$@"
"""


def _wrappers(tmp_path: Path) -> tuple[str, Path]:
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.jsonl"
    bin_dir.mkdir()
    for tool in ("pg_dump", "pg_restore"):
        path = bin_dir / tool
        path.write_text(WRAPPER.format(log=log, tool=tool))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(bin_dir), log


def test_pg_dump_and_pg_restore_see_the_password_in_their_environment_not_in_argv(clean, tmp_path):
    # Given the backup login's URL with a password (the local server trusts, so any connects)
    with session_scope() as s:
        make_product(s, stock=3)
    url = make_url(os.environ["SHOPJOBS_BACKUP_DATABASE_URL"]).set(password=CANARY)
    database_url = url.render_as_string(hide_password=False)
    bin_dir, log = _wrappers(tmp_path)

    # When a dump is taken and restored into a scratch database through the wrapped tools
    counts = pg_tools.dump(bin_dir, database_url, ["products"], str(tmp_path / "d.dump"), 60)
    with pg_tools.scratch_database(database_url) as scratch:
        pg_tools.restore(bin_dir, str(tmp_path / "d.dump"), scratch, 60)
        restored = pg_tools.restored_counts(scratch, ["products"])

    # Then both tools ran, found the password in PGPASSWORD, and no argument carries it
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["argv"][0] for c in calls] == ["-Fc", "--no-owner"]
    assert all(c["pgpassword"] == CANARY for c in calls)
    assert not any(CANARY in arg for c in calls for arg in c["argv"]), calls
    assert counts == restored == {"products": 1}
