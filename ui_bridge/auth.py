"""Who may use the panel: password and token hashing, login sessions, and the failed-login limiter.

Passwords are hashed with scrypt from the standard library (memory-hard, salted, its parameters kept in
the hash string so they can be raised later without breaking old hashes). API tokens for thin clients
are 256 random bits, so a plain SHA-256 of them is enough: only the hash is stored.

Sessions live in memory: a restart of the daemon asks everyone to log in again, which is the safe
default for a panel that controls calls. The limiter counts failures per user name *and* per address, so
one address cannot guess many names, and many addresses cannot hammer one name.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

from store.repository import User

#: scrypt cost: 2**14 × 8 × 128 bytes = 16 MiB and about 50 ms per check (OWASP's minimum is 2**17/8/1
#: with a 128 MiB budget; 2**14 keeps a 2-core box responsive under a login burst). Stored per hash.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64). Slow on purpose: call it off the event loop."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)])


def verify_password(password: str, stored: str | None) -> bool:
    """True when ``password`` matches ``stored``; False for anything malformed (never raises)."""
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(expected), maxmem=256 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


@functools.cache
def dummy_hash() -> str:
    """A hash to check unknown user names against, so that they cost as much time as a wrong password."""
    return hash_password(secrets.token_hex(8))


def new_token() -> str:
    """A fresh API token (shown once, to whoever created it)."""
    return "cti_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(slots=True)
class Session:
    token: str
    user: User
    expires_at: float


@dataclass
class Sessions:
    """Login sessions by their cookie value; each use extends the session by ``lifetime`` seconds."""

    lifetime: float
    _by_token: dict[str, Session] = field(default_factory=dict)

    def start(self, user: User, now: float | None = None) -> Session:
        now = time.time() if now is None else now
        self._expire(now)
        session = Session(secrets.token_urlsafe(32), user, now + self.lifetime)
        self._by_token[session.token] = session
        return session

    def get(self, token: str | None, now: float | None = None) -> Session | None:
        if not token:
            return None
        now = time.time() if now is None else now
        session = self._by_token.get(token)
        if session is None or session.expires_at < now:
            self._by_token.pop(token or "", None)
            return None
        session.expires_at = now + self.lifetime
        return session

    def end(self, token: str | None) -> None:
        if token:
            self._by_token.pop(token, None)

    def _expire(self, now: float) -> None:
        for token in [t for t, s in self._by_token.items() if s.expires_at < now]:
            del self._by_token[token]


@dataclass
class LoginLimiter:
    """At most ``max_failures`` failed logins per name and per address within ``window`` seconds."""

    max_failures: int
    window: float
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after(self, name: str, address: str, now: float | None = None) -> float:
        """Seconds until a login for ``name`` from ``address`` may be tried again; 0 when it may now."""
        now = time.time() if now is None else now
        wait = 0.0
        for key in (f"user:{name.lower()}", f"addr:{address}"):
            times = self._recent(key, now)
            if len(times) >= self.max_failures:
                wait = max(wait, times[0] + self.window - now)
        return wait

    def failed(self, name: str, address: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        for key in (f"user:{name.lower()}", f"addr:{address}"):
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, name: str) -> None:
        self._failures.pop(f"user:{name.lower()}", None)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times
