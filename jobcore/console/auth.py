"""Users, password hashes and sessions of the console.

Passwords are hashed with scrypt (parameters stored with each hash, so they can be raised
later); there is no default user or password: the first one is made with the CLI. A session
token is 32 random bytes given to the browser once; the database keeps only its SHA-256.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import functools
import hashlib
import hmac
import secrets
import threading
import time

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from jobcore.console.models import ROLES, ConsoleSession, ConsoleUser
from jobcore.errors import InvalidInput, NotFound

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
MIN_PASSWORD_CHARS = 12
RANK = {role: rank for rank, role in enumerate(ROLES)}


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who is asking, for one request."""

    user_id: int
    name: str
    role: str
    csrf_token: str
    kind: str

    def may(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]

    @property
    def operator_name(self) -> str:
        """How the audit log names this person (and that it was the console)."""
        return f"console:{self.name}"


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, _unb64(digest))


@functools.cache
def _dummy_hash() -> str:
    """A hash to check against when the name is unknown, so timing does not tell names apart."""
    return hash_password(secrets.token_urlsafe(16))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r, dklen=32)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD_CHARS} characters")


def create_user(session: Session, name: str, role: str, password: str) -> ConsoleUser:
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    if (
        not name
        or len(name) > 64
        or not name.replace("-", "").replace("_", "").replace(".", "").isalnum()
    ):
        raise InvalidInput("a user name is 1-64 letters, digits, '.', '-' or '_'")
    check_password_rules(password)
    if session.scalar(select(ConsoleUser.id).where(ConsoleUser.name == name)) is not None:
        raise InvalidInput(f"user {name!r} exists already")
    user = ConsoleUser(name=name, role=role, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    return user


def user_named(session: Session, name: str) -> ConsoleUser:
    user = session.scalar(select(ConsoleUser).where(ConsoleUser.name == name))
    if user is None:
        raise NotFound(f"no console user {name!r}")
    return user


def set_role(session: Session, name: str, role: str) -> None:
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    user_named(session, name).role = role


def set_password(session: Session, name: str, password: str) -> None:
    check_password_rules(password)
    user = user_named(session, name)
    user.password_hash = hash_password(password)
    session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user.id))


def disable(session: Session, name: str) -> None:
    """Lock the user out and end every session and token of theirs at once."""
    user = user_named(session, name)
    user.disabled_at = dt.datetime.now(dt.UTC)
    session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user.id))


def authenticate(session: Session, name: str, password: str) -> ConsoleUser | None:
    """The enabled user with this password, or None; equally slow whether the name exists or not."""
    user = session.scalar(select(ConsoleUser).where(ConsoleUser.name == name))
    if user is None or user.disabled_at is not None:
        verify_password(password, _dummy_hash())
        return None
    if not verify_password(password, user.password_hash):
        return None
    user.last_login_at = dt.datetime.now(dt.UTC)
    return user


def open_session(
    session: Session,
    user: ConsoleUser,
    *,
    kind: str = "browser",
    hours: float | None = None,
    label: str | None = None,
) -> str:
    """A new session (or API token) for ``user``; returns the token, shown only this once."""
    token = secrets.token_urlsafe(32)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours) if hours else None
    session.add(
        ConsoleSession(
            token_hash=_token_hash(token),
            user_id=user.id,
            kind=kind,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=expires,
            label=label,
        )
    )
    return token


def resolve(
    session: Session, token: str, *, kind: str, idle: dt.timedelta | None
) -> Principal | None:
    """The principal of a live session token (touching it), or None when unknown or expired."""
    if not token or len(token) > 100:
        return None
    now = dt.datetime.now(dt.UTC)
    row = session.execute(
        select(ConsoleSession, ConsoleUser)
        .join(ConsoleUser, ConsoleUser.id == ConsoleSession.user_id)
        .where(ConsoleSession.token_hash == _token_hash(token), ConsoleSession.kind == kind)
    ).first()
    if row is None:
        return None
    held, user = row
    expired = (held.expires_at is not None and held.expires_at <= now) or (
        idle is not None and held.last_seen_at <= now - idle
    )
    if expired or user.disabled_at is not None:
        session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == held.token_hash))
        return None
    if (now - held.last_seen_at).total_seconds() > 30:  # one write per half minute, not per click
        session.execute(
            update(ConsoleSession)
            .where(ConsoleSession.token_hash == held.token_hash)
            .values(last_seen_at=now)
        )
    return Principal(user.id, user.name, user.role, held.csrf_token, held.kind)


def close_session(session: Session, token: str) -> None:
    session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == _token_hash(token)))


class LoginThrottle:
    """Refuses a name for a while after repeated wrong passwords (per process; guesses are slow
    anyway, scrypt costs ~0.1 s each, this stops a patient loop)."""

    def __init__(self, failures: int = 5, window_s: float = 900.0) -> None:
        self.failures, self.window_s = failures, window_s
        self._seen: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, name: str) -> bool:
        with self._lock:
            recent = [t for t in self._seen.get(name, []) if t > time.monotonic() - self.window_s]
            self._seen[name] = recent
            return len(recent) >= self.failures

    def failed(self, name: str) -> None:
        with self._lock:
            self._seen.setdefault(name, []).append(time.monotonic())
            if len(self._seen) > 10_000:
                self._seen.clear()

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._seen.pop(name, None)
