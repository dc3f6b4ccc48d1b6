"""The catalog's notification templates render their context module's SAMPLE in en and fa."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

jinja2 = pytest.importorskip("jinja2")

TEMPLATES = Path(__file__).resolve().parents[2] / "shop" / "templates"
KINDS = ("product", "sales_report", "export", "price_feed")
CASES = [
    (kind, template, locale, part)
    for kind in KINDS
    for template in importlib.import_module(f"shop.notifications.contexts.{kind}").TEMPLATES
    for locale in ("en", "fa")
    for part in ("subject.txt", "txt", "html")
]


@pytest.mark.parametrize(("kind", "template", "locale", "part"), CASES)
def test_a_catalog_template_renders_its_sample_strictly(kind, template, locale, part):
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES / locale),
        undefined=jinja2.StrictUndefined,
        autoescape=part == "html",
    )
    sample = importlib.import_module(f"shop.notifications.contexts.{kind}").SAMPLE
    rendered = env.get_template(f"{template}.{part}").render(**sample)
    assert rendered.strip()
    if part == "subject.txt":
        assert "\n" not in rendered.strip()
    if part == "html" and locale == "fa":
        assert 'dir="rtl"' in rendered
