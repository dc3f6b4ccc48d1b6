"""Order actors (the pipeline and its compensation come with [02])."""

from __future__ import annotations
