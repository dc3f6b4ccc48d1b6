"""``console``: serve the web console, and manage its users and API tokens.

shopjobs console [--bind ADDR] [--port N]            # serve (127.0.0.1:8180 by default)
shopjobs console users add NAME --role viewer|operator|admin   # asks for the password
shopjobs console users list | role NAME ROLE | password NAME | disable NAME
shopjobs console token NAME [--label L]             # a read-only API token for scripts
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import logging
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from jobcore.cli.output import emit
from jobcore.console import auth
from jobcore.console.extensions import Extensions
from jobcore.console.models import ROLES, ConsoleUser
from jobcore.console.settings import ConsoleSettings
from jobcore.db import session_scope
from jobcore.errors import InvalidInput

logger = logging.getLogger("shopjobs.console")


def register(groups: Any, make: Callable[[argparse.Namespace], Extensions]) -> None:
    """Add ``console``; ``make(args)`` builds the application's extensions when it serves
    (``args.context`` is the entry point's ``CliContext``)."""
    parser = groups.add_parser(
        "console",
        help="the operator's web console (serve; users; tokens)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bind", help="address to listen on (SHOPJOBS_CONSOLE_BIND, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (SHOPJOBS_CONSOLE_PORT, 8180; 0: any free)")
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="also import MODULE at start (more actor modules whose dead letters "
        "the console may replay)",
    )
    parser.set_defaults(run=lambda args: serve(args, make))
    commands = parser.add_subparsers(dest="command")

    users = commands.add_parser("users", help="console users").add_subparsers(
        dest="users", required=True
    )
    add = users.add_parser(
        "add", help="create a user (password from the terminal or --password-stdin)"
    )
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(run=run_add)
    listing = users.add_parser("list", help="every user, role, last login")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=run_list)
    role = users.add_parser("role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    role.set_defaults(run=run_role)
    password = users.add_parser("password", help="set a new password (ends the user's sessions)")
    password.add_argument("name")
    password.add_argument("--password-stdin", action="store_true")
    password.set_defaults(run=run_password)
    off = users.add_parser("disable", help="lock a user out and end their sessions and tokens")
    off.add_argument("name")
    off.set_defaults(run=run_disable)

    token = commands.add_parser("token", help="a read-only API token (GET, Authorization: Bearer)")
    token.add_argument("name")
    token.add_argument("--label", default="api")
    token.set_defaults(run=run_token)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise InvalidInput("no terminal to ask for the password: use --password-stdin")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise InvalidInput("the two passwords differ")
    return first


def run_add(args: argparse.Namespace) -> int:
    password = _password(args)
    with session_scope() as s:
        user = auth.create_user(s, args.name, args.role, password)
    print(f"user {user.name} created ({user.role})")
    return 0


def run_list(args: argparse.Namespace) -> int:
    with session_scope() as s:
        rows = [
            {
                "name": u.name,
                "role": u.role,
                "created_at": u.created_at,
                "last_login_at": u.last_login_at,
                "disabled": u.disabled_at is not None,
            }
            for u in s.scalars(select(ConsoleUser).order_by(ConsoleUser.name))
        ]
    emit(rows, as_json=args.json)
    return 0


def run_role(args: argparse.Namespace) -> int:
    with session_scope() as s:
        auth.set_role(s, args.name, args.role)
    print(f"{args.name} is now {args.role}")
    return 0


def run_password(args: argparse.Namespace) -> int:
    password = _password(args)
    with session_scope() as s:
        auth.set_password(s, args.name, password)
    print(f"password of {args.name} changed; their sessions ended")
    return 0


def run_disable(args: argparse.Namespace) -> int:
    with session_scope() as s:
        auth.disable(s, args.name)
    print(f"{args.name} disabled; their sessions and tokens ended")
    return 0


def run_token(args: argparse.Namespace) -> int:
    with session_scope() as s:
        user = auth.user_named(s, args.name)
        if user.disabled_at is not None:
            raise InvalidInput(f"{args.name} is disabled")
        token = auth.open_session(s, user, kind="token", label=args.label[:120])
    print(token)
    print(
        "(shown once; send it as 'Authorization: Bearer <token>' to the .json pages)",
        file=sys.stderr,
    )
    return 0


def serve(args: argparse.Namespace, make: Callable[[argparse.Namespace], Extensions]) -> int:
    """Run the console until SIGINT/SIGTERM; prints its URL once it listens."""
    import uvicorn

    from jobcore.console.app import create_app

    console = ConsoleSettings.from_env()
    bind = args.bind or console.bind
    port = console.port if args.port is None else args.port
    ext = make(args)
    app = create_app(args.context.settings, console, ext)
    for name in args.imports:
        importlib.import_module(name)
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((bind, port))
    host = f"[{bind}]" if ":" in bind else bind
    url = f"http://{host}:{sock.getsockname()[1]}/"
    if bind not in ("127.0.0.1", "::1") and not console.secure_cookies:
        logger.warning("console listens on %s without secure cookies: put it behind HTTPS", bind)
    config = uvicorn.Config(
        app,
        log_level=os.environ.get("SHOPJOBS_CONSOLE_LOG_LEVEL", "warning"),
        access_log=False,
        timeout_graceful_shutdown=3,
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    sock.listen(128)
    print(f"console listening on {url}", flush=True)
    server.run(sockets=[sock])
    return 0
