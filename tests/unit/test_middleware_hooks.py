"""Every hook our middleware define is one Dramatiq emits: a misnamed hook never runs, silently."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import dramatiq

import middleware


def _our_middleware() -> list[type[dramatiq.Middleware]]:
    found = []
    for info in pkgutil.iter_modules(middleware.__path__):
        module = importlib.import_module(f"middleware.{info.name}")
        found += [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, dramatiq.Middleware) and cls.__module__ == module.__name__
        ]
    return found


def test_every_hook_of_our_middleware_is_one_dramatiq_emits():
    # Given the hooks Dramatiq's Middleware declares (the signals its broker and worker emit)
    emitted = {name for name in vars(dramatiq.Middleware) if name.startswith(("before_", "after_"))}

    # When every before_*/after_* method of our middleware is checked against them
    classes = _our_middleware()
    unknown = {
        f"{cls.__name__}.{name}"
        for cls in classes
        for name in vars(cls)
        if name.startswith(("before_", "after_")) and name not in emitted
    }

    # Then none is a hook Dramatiq never calls
    assert len(classes) >= 9
    assert unknown == set()
