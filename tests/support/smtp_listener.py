"""A tiny real SMTP listener on a socket (greeting, EHLO/HELO, NOOP, RSET, QUIT), for health probes.

Enough of RFC 5321 for a client to connect and ask NOOP; it accepts no mail. Started and
stopped by the test that uses it.
"""

from __future__ import annotations

import socketserver
import threading


class _Session(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.wfile.write(b"220 localhost test ESMTP\r\n")
        for raw in self.rfile:
            verb = raw.decode("ascii", "replace").strip().split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.wfile.write(b"250 localhost\r\n")
            elif verb in ("NOOP", "RSET"):
                self.wfile.write(b"250 OK\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 Bye\r\n")
                return
            else:
                self.wfile.write(b"502 Command not implemented\r\n")


class SmtpListener:
    def __init__(self) -> None:
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Session)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="smtp-listener", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
