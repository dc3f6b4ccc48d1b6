"""Rendering notification templates (Jinja2 files per locale) with StrictUndefined.

``shop/templates/<locale>/<name>.subject.txt``, ``<name>.txt`` and ``<name>.html`` (autoescaped)
make an e-mail; ``<name>.sms.txt`` an SMS. A missing variable is an error, never an empty gap.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import jinja2

from jobcore.errors import InvalidInput, PermanentError

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
LOCALES = ("en", "fa")
RTL_LOCALES = frozenset({"fa"})
DEFAULT_LOCALE = "en"
# the keys every template may use besides its kind's context (see ``base_context``)
BASE_SAMPLE: dict[str, Any] = {
    "shop": {"name": "Example Shop", "url": "https://shop.example.test"},
    "recipient": {"name": "Sara"},
}


@dataclasses.dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


@functools.cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def locale_for(preferred: str | None) -> str:
    """The user's locale if we have templates for it (``fa-IR`` → ``fa``), else English."""
    base = (preferred or DEFAULT_LOCALE).split("-")[0].split("_")[0].lower()
    return base if base in LOCALES else DEFAULT_LOCALE


def _render(path: str, context: dict[str, Any]) -> str:
    try:
        return environment().get_template(path).render(**context).strip()
    except jinja2.TemplateNotFound:
        raise InvalidInput(f"no template {path!r} in shop/templates") from None
    except jinja2.UndefinedError as exc:
        raise PermanentError(
            f"template {path!r} needs a value it was not given: {exc.message}"
        ) from None


def render_email(template: str, locale: str, context: dict[str, Any]) -> RenderedEmail:
    ctx = {**context, "locale": locale, "rtl": locale in RTL_LOCALES}
    subject = _render(f"{locale}/{template}.subject.txt", ctx)
    return RenderedEmail(
        subject=" ".join(subject.split()),
        text=_render(f"{locale}/{template}.txt", ctx) + "\n",
        html=_render(f"{locale}/{template}.html", ctx) + "\n",
    )


def render_sms(template: str, locale: str, context: dict[str, Any]) -> str:
    ctx = {**context, "locale": locale, "rtl": locale in RTL_LOCALES}
    return " ".join(_render(f"{locale}/{template}.sms.txt", ctx).split())


def has_sms(template: str, locale: str = DEFAULT_LOCALE) -> bool:
    return (TEMPLATE_DIR / locale / f"{template}.sms.txt").is_file()
