"""One table from actor name to queue and options, so code below the actors sends by name.

The application builds its ``Routes`` once (from its settings), installs it with
``install(routes)`` where it sets Dramatiq's global broker, and declares each actor with
``routes.actor(name)``: the declaration and every send read the same row, so a queue or a
retry limit is written once. Services send with ``jobcore.outbox.enqueue(session, name, ...)``
and never import the module that declares the actor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ParamSpec, TypedDict, TypeVar

import dramatiq
from dramatiq import Message

P = ParamSpec("P")
R = TypeVar("R")


class ActorOptions(TypedDict, total=False):
    """The per-actor options our stack reads (Dramatiq's and our middleware's), typed."""

    max_retries: int
    min_backoff: int
    max_backoff: int
    time_limit: int
    max_age: int
    throws: tuple[type[BaseException], ...]
    retry_when: Callable[[int, BaseException], bool]
    dedupe: bool
    compensate_with: str
    on_retry_exhausted: str
    priority: int
    unique_key: str | Callable[..., str | None]
    unique_for: int
    on_duplicate: str


@dataclasses.dataclass(frozen=True)
class Route:
    """Where ``actor_name``'s messages go and the options its actor is declared with."""

    actor_name: str
    queue_name: str
    options: ActorOptions = dataclasses.field(default_factory=lambda: ActorOptions())

    def __post_init__(self) -> None:
        if not self.actor_name or "." not in self.actor_name:
            raise ValueError(f"actor name {self.actor_name!r} must be 'domain.verb'")
        if not self.queue_name:
            raise ValueError(f"route {self.actor_name!r} has no queue")


class UnknownActor(LookupError):
    """A send names an actor the routing table does not have."""


class Routes(Mapping[str, Route]):
    """The application's routing table: actor name -> ``Route``; names are unique."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self._routes: dict[str, Route] = {}
        for route in routes:
            if route.actor_name in self._routes:
                raise ValueError(f"actor {route.actor_name!r} is routed twice")
            self._routes[route.actor_name] = route

    def __getitem__(self, name: str) -> Route:
        try:
            return self._routes[name]
        except KeyError:
            raise UnknownActor(
                f"no route for actor {name!r}; add it to the routing table"
            ) from None

    # Mapping's own ``in`` and ``get`` ask __getitem__ and catch KeyError; UnknownActor is not one
    def __contains__(self, name: object) -> bool:
        return name in self._routes

    def get(self, name: str, default: Any = None) -> Any:
        return self._routes.get(name, default)

    def __iter__(self) -> Any:
        return iter(self._routes)

    def __len__(self) -> int:
        return len(self._routes)

    def queues(self) -> list[str]:
        """Every queue a route names, in first-seen order."""
        return list(dict.fromkeys(route.queue_name for route in self._routes.values()))

    def actor(
        self, name: str, **overrides: Any
    ) -> Callable[[Callable[P, R]], dramatiq.Actor[P, R]]:
        """Declare ``fn`` as the actor ``name`` with its route's queue and options."""
        route = self[name]
        options: dict[str, Any] = {**route.options, **overrides}

        def declare(fn: Callable[P, R]) -> dramatiq.Actor[P, R]:
            return dramatiq.actor(actor_name=name, queue_name=route.queue_name, **options)(fn)

        return declare

    def message(
        self,
        name: str,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> Message[Any]:
        """A message for actor ``name``, built from the table (the actor need not be imported)."""
        route = self[name]
        return Message(
            queue_name=route.queue_name,
            actor_name=name,
            args=tuple(args),
            kwargs=dict(kwargs or {}),
            options=options,
        )


_installed: Routes | None = None


def install(routes: Routes) -> None:
    """Make ``routes`` the process's table (done where the global broker is set)."""
    global _installed
    _installed = routes


def routes() -> Routes:
    """The process's routing table; a clear error when the entry point installed none."""
    if _installed is None:
        raise RuntimeError(
            "no routing table installed: the process's entry point must call "
            "jobcore.routing.install() (broker.py does)"
        )
    return _installed


def declared_actor(name: str) -> dramatiq.Actor[Any, Any] | None:
    """The actor ``name`` if this process declared it (for its parameter names), else None."""
    try:
        return dramatiq.get_broker().get_actor(name)
    except dramatiq.errors.ActorNotFound:
        return None


def actor_options(name: str, broker: Any = None) -> Mapping[str, Any]:
    """The options actor ``name`` is declared with: the broker's declared actor, else its route
    in the installed table (a process that sends by name need not declare it), else none."""
    declared = getattr(broker if broker is not None else _current_broker(), "actors", {}).get(name)
    if declared is not None:
        return declared.options
    if _installed is not None and name in _installed:
        return _installed[name].options
    return {}


def _current_broker() -> Any:
    return dramatiq.broker.global_broker
