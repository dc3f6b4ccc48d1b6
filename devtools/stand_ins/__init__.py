"""Local stand-ins for the shop's external HTTP parties (payments, warehouse, carrier).

Each one is a real HTTP server on 127.0.0.1 with fault injection, run as its own process
(``python -m devtools.stand_ins.<name> --port N`` or ``devtools.stand_ins.process.start_stand_in``), so
integration tests and the main job exercise the same protocol the shop speaks in production.
"""
