"""E-mail actors (SMTP delivery comes with [03]). Absolute imports keep the stdlib ``email`` visible."""

from __future__ import annotations
