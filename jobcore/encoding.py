"""Message decoding by orjson: Dramatiq's JSON, read about three times as fast.

Every delivery is decoded once (``Message.decode``), with the standard library's ``json`` by
Dramatiq's ``JSONEncoder``: 2-3 % of a worker's CPU on no-op jobs. Encoding stays Dramatiq's, so
the bytes on the wire do not change (orjson would write NaN as null and refuse non-string keys).
Decoding falls back to Dramatiq's own path, which also raises its ``DecodeError`` for what is
not JSON, for a body orjson refuses (NaN or Infinity, which ``json.dumps`` writes) and for one
with a run of 19 or more digits: orjson reads an integer past 64 bits as a float, silently.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from dramatiq.encoder import JSONEncoder

# an integer orjson may not hold (int64 has 19 digits); a run inside a string or a long
# fraction only takes the slower path
_LONG_DIGITS = re.compile(rb"\d{19}")


class OrjsonDecodingEncoder(JSONEncoder):
    """Dramatiq's JSONEncoder whose ``decode`` tries orjson first."""

    def decode(self, data: bytes) -> Any:
        if _LONG_DIGITS.search(data) is None:
            try:
                return orjson.loads(data)
            except orjson.JSONDecodeError:
                pass
        return super().decode(data)
