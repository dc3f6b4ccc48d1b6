"""Dramatiq's ``Results`` middleware with the ledger as its backend, and no per-job hooks.

JobStatus writes a job's return value with its final state, so ``LedgerResults`` stores nothing
(``store_result`` and ``store_exception`` are no-ops). ``Results``' hooks did nothing else here
than look up each job's ``store_results`` and ``result_ttl`` options to call them: about 2 % of
a worker's CPU on no-op jobs. What the middleware is still there for: the broker reports a
results backend (``message.get_result`` reads the ledger through it), Dramatiq does not warn
that a returned value is discarded (it looks for this exact class), and ``store_results`` and
``result_ttl`` stay valid actor options.
"""

from __future__ import annotations

import types

from dramatiq import Middleware
from dramatiq.results import Results

from jobcore.ledger.results import LedgerResults

# Results' hooks; each would only call one of LedgerResults' no-op stores
NO_OP_HOOKS = ("after_process_message", "after_skip_message", "after_nack")


def ledger_results() -> Results:
    """``Results(backend=LedgerResults(), store_results=True)`` whose hooks are Middleware's
    empty defaults on the instance: any broker may call them, HookDispatch skips them."""
    results = Results(backend=LedgerResults(), store_results=True)
    for hook in NO_OP_HOOKS:
        setattr(results, hook, types.MethodType(getattr(Middleware, hook), results))
    return results
