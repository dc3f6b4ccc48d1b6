"""The fault catalogue (``../shared/fault-catalogue.md``) as runnable scenarios.

``load`` makes a shop's order traffic, ``audit`` checks the invariants once the system drained,
``proxy`` and ``netns`` break the network between the workers and RabbitMQ or PostgreSQL,
``actors`` are the misbehaving jobs some rows need, ``scenarios`` runs one catalogue row and
returns what happened. ``tests/chaos`` runs the rows at CI size and asserts; ``bench/soak.py``
runs them at 10,000 orders and prints a table.
"""
