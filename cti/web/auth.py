"""Web users and sessions. Passwords: scrypt (stdlib hashlib). Sessions: a random token in an
HttpOnly cookie, only its SHA-256 stored, with an expiry. Roles decide what a page may do."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

ROLES = ("agent", "supervisor", "manager", "admin")
MONITOR_ROLES = frozenset({"supervisor", "manager", "admin"})
STEER_ROLES = frozenset({"supervisor", "admin"})
_N, _R, _P = 2**14, 8, 1
SESSION_TTL = timedelta(hours=12)  # absolute lifetime unless settings say otherwise (web.session_max_hours)
SESSION_IDLE = timedelta(minutes=30)  # web.session_idle_minutes
_SEEN_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often, not per request


MIN_PASSWORD = 8


class WeakPassword(ValueError):
    """A password too short to set (bad input: `cti` prints it in one line)."""


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"password must have at least {MIN_PASSWORD} characters")
    return password


class BadRole(ValueError):
    """A role that does not exist."""


class AuthError(Exception):
    """Wrong user name or password (deliberately not saying which)."""


@dataclass(frozen=True)
class User:
    username: str
    display_name: str
    role: str
    agent_id: str | None
    can_reveal_numbers: bool

    def may(self, roles: frozenset[str]) -> bool:
        return self.role in roles


def hash_password(password: str) -> str:
    check_password(password)
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(got, base64.b64decode(digest))


async def add_user(
    conn: Any,
    username: str,
    password: str,
    role: str,
    *,
    display_name: str = "",
    agent_id: str | None = None,
    can_reveal_numbers: bool = False,
) -> None:
    if role not in ROLES:
        raise BadRole(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    await conn.execute(
        """INSERT INTO web_users (username, display_name, password_hash, role, agent_id, can_reveal_numbers)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (username) DO UPDATE SET display_name = EXCLUDED.display_name,
               password_hash = EXCLUDED.password_hash, role = EXCLUDED.role, agent_id = EXCLUDED.agent_id,
               can_reveal_numbers = EXCLUDED.can_reveal_numbers, active = true""",
        username, display_name, hash_password(password), role, agent_id, can_reveal_numbers,
    )  # fmt: skip


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def login(
    conn: Any, username: str, password: str, now: datetime, ttl: timedelta = SESSION_TTL
) -> tuple[str, User]:
    row = await conn.fetchrow("SELECT * FROM web_users WHERE username = $1 AND active", username)
    # verify against a dummy hash when the user is unknown, so timing does not tell
    stored = row["password_hash"] if row else _DUMMY_HASH
    if not verify_password(password, stored) or row is None:
        raise AuthError("wrong user name or password")
    token = secrets.token_urlsafe(32)
    await conn.execute(
        """INSERT INTO web_sessions (token_sha256, username, created_at, expires_at, last_seen_at)
           VALUES ($1, $2, $3, $4, $3)""",
        _token_hash(token), username, now, now + ttl,
    )  # fmt: skip
    return token, _user(row)


async def session_user(
    conn: Any, token: str | None, now: datetime, idle: timedelta = SESSION_IDLE
) -> User | None:
    """The session's user while it is neither past its absolute expiry nor idle too long; a dead
    session is deleted, so its cookie can never come back."""
    if not token:
        return None
    th = _token_hash(token)
    row = await conn.fetchrow(
        """SELECT u.*, s.expires_at, COALESCE(s.last_seen_at, s.created_at) AS seen
           FROM web_sessions s JOIN web_users u USING (username) WHERE s.token_sha256 = $1""",
        th,
    )
    if row is None:
        return None
    if row["expires_at"] <= now or row["seen"] + idle <= now or not row["active"]:
        await conn.execute("DELETE FROM web_sessions WHERE token_sha256 = $1", th)
        return None
    if now - row["seen"] >= _SEEN_EVERY:
        await conn.execute("UPDATE web_sessions SET last_seen_at = $2 WHERE token_sha256 = $1", th, now)
    return _user(row)


async def logout(conn: Any, token: str | None) -> None:
    if token:
        await conn.execute("DELETE FROM web_sessions WHERE token_sha256 = $1", _token_hash(token))


def _user(row: Any) -> User:
    return User(row["username"], row["display_name"], row["role"], row["agent_id"], row["can_reveal_numbers"])


_DUMMY_HASH = hash_password("not-a-real-password-" + secrets.token_hex(8))
