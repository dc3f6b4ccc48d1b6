"""Every template of every context module renders in every locale with StrictUndefined."""

from __future__ import annotations

import time

import pytest

from jobcore.errors import InvalidInput, PermanentError
from shop.notifications import render
from shop.notifications.context_lookup import all_modules, parse_entity_key
from shop.notifications.links import make_token, verify_token
from shop.notifications.messages import message_id

CASES = [
    (module.__name__.rsplit(".", 1)[1], template, locale)
    for module in all_modules()
    for template in module.TEMPLATES
    for locale in render.LOCALES
]
MODULES = {module.__name__.rsplit(".", 1)[1]: module for module in all_modules()}


def test_every_context_module_declares_templates_a_sample_and_a_loader():
    assert {"order", "user", "job", "subscription", "campaign"} <= set(MODULES)
    for name, module in MODULES.items():
        assert isinstance(module.TEMPLATES, tuple) and module.TEMPLATES, name
        assert isinstance(module.SAMPLE, dict) and module.SAMPLE, name
        assert callable(module.load), name


@pytest.mark.parametrize(("kind", "template", "locale"), CASES)
def test_the_template_renders_subject_text_and_html_with_strict_undefined(kind, template, locale):
    # Given the kind's sample context, When rendered, Then every part is non-empty
    context = {**render.BASE_SAMPLE, **MODULES[kind].SAMPLE}
    email = render.render_email(template, locale, context)
    assert email.subject and "\n" not in email.subject
    assert email.text.strip() and email.html.strip()
    assert ('dir="rtl"' in email.html) == (locale in render.RTL_LOCALES)
    if render.has_sms(template, render.DEFAULT_LOCALE):
        assert render.render_sms(template, locale, context)


def test_html_parts_escape_what_they_are_given():
    context = {**render.BASE_SAMPLE, **MODULES["order"].SAMPLE}
    email = render.render_email("order_confirmation", "en", context)
    assert "Linen shirt &lt;blue&gt;" in email.html and "Linen shirt <blue>" in email.text


def test_a_missing_variable_or_template_is_a_permanent_error():
    with pytest.raises(PermanentError, match="needs a value"):
        render.render_email("order_confirmation", "en", render.BASE_SAMPLE)
    with pytest.raises(InvalidInput, match="no template"):
        render.render_email("no_such_template", "en", render.BASE_SAMPLE)


def test_locales_fall_back_to_english():
    assert [render.locale_for(x) for x in ("fa-IR", "fa", "de", None, "EN_gb")] == [
        "fa",
        "fa",
        "en",
        "en",
        "en",
    ]


def test_entity_keys_parse_into_kind_ident_and_suffix():
    assert parse_entity_key("subscription:12#2026-12-01") == ("subscription", "12", "2026-12-01")
    assert parse_entity_key("order:42") == ("order", "42", None)
    with pytest.raises(InvalidInput):
        parse_entity_key("order")


def test_the_message_id_is_stable_per_template_and_entity():
    a = message_id("welcome", "user:1", "shop@example.test")
    assert a == message_id("welcome", "user:1", "shop@example.test")
    assert a != message_id("welcome", "user:2", "shop@example.test")
    assert a.startswith("<") and a.endswith("@example.test>")


def test_a_verification_token_verifies_and_refuses_tampering_and_expiry():
    now = time.time()
    token = make_token("s3cret", 7, ttl_s=3600, now=now)
    assert verify_token("s3cret", token, now=now + 10) == 7
    with pytest.raises(InvalidInput, match="expired"):
        verify_token("s3cret", token, now=now + 3601)
    with pytest.raises(InvalidInput, match="signature"):
        verify_token("other", token, now=now)
    _user, expires, sig = token.split(".")
    with pytest.raises(InvalidInput, match="signature"):
        verify_token("s3cret", f"8.{expires}.{sig}", now=now)
    with pytest.raises(InvalidInput, match="malformed"):
        verify_token("s3cret", "nonsense", now=now)
