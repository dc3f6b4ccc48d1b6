"""Every actor of the shop. ``dramatiq actors`` imports this package, which loads them all.

Actors are thin adapters: check the ids, open a session, call a service, return a small value.
Names are explicit and stable (``domain.verb``) so renaming a function orphans no message.
"""

import broker  # noqa: F401  (sets the global broker before any actor is declared)
from actors import (  # noqa: F401
    backups,
    email,
    health,
    inventory,
    jobs,
    maintenance,
    media,
    notifications,
    orders,
    payments,
    prices,
    reports,
    subscriptions,
)
