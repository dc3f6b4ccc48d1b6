"""Which context a notification renders with: ``shop/notifications/contexts/<kind>.py`` by entity key."""

from __future__ import annotations

import importlib
import pkgutil
import re
from types import ModuleType
from typing import Any

from sqlalchemy.orm import Session

import shop.notifications.contexts as package
from jobcore.errors import InvalidInput

ENTITY_KEY = re.compile(r"(?P<kind>[a-z][a-z0-9_]*):(?P<ident>[^#]+)(?:#(?P<suffix>.*))?")


def parse_entity_key(entity_key: str) -> tuple[str, str, str | None]:
    """``"order:42#3"`` → ``("order", "42", "3")``."""
    match = ENTITY_KEY.fullmatch(entity_key or "")
    if match is None:
        raise InvalidInput(f"entity key {entity_key!r} is not '<kind>:<ident>[#<suffix>]'")
    return match["kind"], match["ident"], match["suffix"]


def module_for(kind: str) -> ModuleType:
    try:
        return importlib.import_module(f"{package.__name__}.{kind}")
    except ModuleNotFoundError:
        raise InvalidInput(f"no context module shop/notifications/contexts/{kind}.py") from None


def all_modules() -> list[ModuleType]:
    """Every context module (the render test walks them all, other areas' kinds included)."""
    return [
        importlib.import_module(f"{package.__name__}.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_")
    ]


def load_context(session: Session, template: str, entity_key: str) -> dict[str, Any]:
    """The template's context, loaded now (never carried in a message)."""
    kind, ident, _ = parse_entity_key(entity_key)
    module = module_for(kind)
    if template not in module.TEMPLATES:
        raise InvalidInput(f"template {template!r} is not rendered with '{kind}' entities")
    context: dict[str, Any] = module.load(session, ident)
    return context
