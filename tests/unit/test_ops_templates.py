"""The health and backup alert templates render in both locales with their SAMPLE contexts."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parents[2] / "shop" / "templates"


@pytest.mark.parametrize("kind", ["health", "backup"])
@pytest.mark.parametrize("locale", ["en", "fa"])
def test_alert_templates_render_strictly_in_both_locales(kind: str, locale: str) -> None:
    jinja2 = pytest.importorskip("jinja2")  # the notifications package brings it
    context = importlib.import_module(f"shop.notifications.contexts.{kind}")
    for template in context.TEMPLATES:
        for suffix, autoescape in ((".subject.txt", False), (".txt", False), (".html", True)):
            env = jinja2.Environment(
                loader=jinja2.FileSystemLoader(TEMPLATES / locale),
                undefined=jinja2.StrictUndefined,
                autoescape=autoescape,
            )
            rendered = env.get_template(template + suffix).render(**context.SAMPLE)
            assert str(context.SAMPLE["kind" if kind == "backup" else "component"]) in rendered
            if suffix == ".html":
                assert f'dir="{"rtl" if locale == "fa" else "ltr"}"' in rendered
