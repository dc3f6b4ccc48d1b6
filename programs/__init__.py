"""The project's programs beside ``broker.py`` and ``scheduler.py``: the ``shopjobs`` CLI and the
payment webhook endpoint. Entry points sit on top: they build the settings (by importing
``broker``), wire the layers together, and nothing below imports them."""
