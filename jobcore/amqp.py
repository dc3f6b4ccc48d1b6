"""Connections to RabbitMQ: one node or a cluster, from one setting.

``SHOPJOBS_AMQP_URL`` holds one AMQP URL or several separated by ``;`` (the nodes of a
cluster, Dramatiq's own convention). pika tries the nodes in order on every (re)connect, so
producers, workers, the relay, the scheduler and the tools fail over to a live node the same
way; the broker passes the same list to Dramatiq (``url="a;b;c"``).
"""

from __future__ import annotations

from typing import Any

SEPARATOR = ";"


def split(url: str) -> list[str]:
    """The node URLs of ``url`` (one or several separated by ``;``), blanks dropped."""
    return [part.strip() for part in url.split(SEPARATOR) if part.strip()]


def parameters(url: str, **overrides: Any) -> list[Any]:
    """pika parameters, one per node, each with ``overrides`` set (timeouts, attempts)."""
    import pika

    out = []
    for node in split(url):
        params = pika.URLParameters(node)
        for name, value in overrides.items():
            setattr(params, name, value)
        out.append(params)
    return out


def connect(url: str, **overrides: Any) -> Any:
    """A blocking connection to the first node of ``url`` that accepts one."""
    import pika

    return pika.BlockingConnection(parameters(url, **overrides))
