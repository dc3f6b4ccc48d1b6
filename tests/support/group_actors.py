"""Actors for the group tests: children that succeed or fail for good, and callbacks."""

from __future__ import annotations

import dramatiq

import broker  # noqa: F401  (the project's broker and middleware stack)

QUEUE = "tests"


@dramatiq.actor(actor_name="tests.group_child", queue_name=QUEUE, max_retries=0)
def group_child(n: int, fail: bool) -> int:
    """A child of a group; ``fail`` fails it for good (no retry)."""
    if fail:
        raise RuntimeError(f"child {n} fails for good")
    return n


@dramatiq.actor(actor_name="tests.group_callback", queue_name=QUEUE, max_retries=0)
def group_callback(path: str, kind: str) -> None:
    """A group's callback: appends ``kind`` to ``path`` (each run one line)."""
    with open(path, "a") as fh:
        fh.write(f"{kind}\n")


@dramatiq.actor(actor_name="tests.start_group", queue_name=QUEUE, max_retries=0)
def start_group(path: str, children: int) -> str:
    """A pipeline step that starts a group; the steps after it run when the group settles."""
    from jobcore.db import session_scope
    from jobcore.groups import group

    after = [
        group_callback.message_with_options(args=(path, kind), pipe_ignore=True)
        for kind in ("after the group", "last step")
    ]
    g = group(
        [group_child.message(n, False) for n in range(children)],
        on_settled=dramatiq.pipeline(after),
    )
    with session_scope() as s:
        return g.enqueue(s)


@dramatiq.actor(
    actor_name="tests.group_flaky_child",
    queue_name=QUEUE,
    max_retries=3,
    min_backoff=10,
    max_backoff=50,
)
def group_flaky_child(n: int, failures: int) -> int:
    """Fails its first ``failures`` attempts (a transient error, retried), then succeeds."""
    from dramatiq.middleware import CurrentMessage

    message = CurrentMessage.get_current_message()
    attempt = (message.options.get("retries", 0) if message is not None else 0) + 1
    if attempt <= failures:
        raise ConnectionError(f"child {n} attempt {attempt} fails")
    return n
