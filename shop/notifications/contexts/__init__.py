"""One module per entity kind: ``TEMPLATES``, ``SAMPLE`` and ``load(session, ident)`` (see README)."""
