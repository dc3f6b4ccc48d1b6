"""A clean shutdown logs no ERROR for closing AMQP connections that are already closed."""

from __future__ import annotations

import io
import logging
import os

import pika
import pytest

from jobcore import logs


def test_closing_an_already_closed_amqp_connection_logs_no_error(infrastructure):
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logs.configure("json", "INFO")
    out = io.StringIO()
    root.handlers[0].setStream(out)
    try:
        # Given a real connection to RabbitMQ, already closed (as some are when workers stop)
        connection = pika.BlockingConnection(pika.URLParameters(os.environ["SHOPJOBS_AMQP_URL"]))
        connection.close()
        # When it is closed again, pika raises (the caller's business) and logs no ERROR
        with pytest.raises(pika.exceptions.ConnectionWrongStateError):
            connection.close()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert '"level": "error"' not in out.getvalue()
