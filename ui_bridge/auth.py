"""Who may log in to the panel: password and token hashing, and the login throttle.

Passwords are hashed with scrypt from the standard library (memory-hard, salted, its parameters kept in
the hash string so they can be raised later without breaking old hashes). API tokens for thin clients
and session cookies are 256 random bits, so a plain SHA-256 of them is enough: only the hash is stored.
Login sessions themselves live in the store (``ui_bridge/sessions.py``).

The throttle (``LoginThrottle``) decides *before* the scrypt check, synchronously on the event loop, whether
an attempt may be checked at all, and reserves its place in the same step: a hundred parallel guesses cannot
all slip past a count that is only updated once their (threaded, 50 ms) checks come back. It keys on
(user name, client address) with exponential back-off, so a user's typos on one desk never lock them out
from another, and on the address alone with a larger budget, so one address cannot spray many names. It is
kept in memory, per daemon: a restart forgets it, and two daemons behind one balancer count apart.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import ipaddress
import math
import secrets
import time
from dataclasses import dataclass
from types import TracebackType

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




class Throttled(Exception):
    """A login attempt that may not be checked now; try again in ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"try again in {retry_after:.1f} s")
        self.retry_after = retry_after


@dataclass(slots=True)
class _Backoff:
    """Failures of one (user, address) pair: free up to the budget, then one try per growing delay."""

    failures: int = 0
    pending: int = 0  # attempts reserved and being checked now
    last_failure: float = -math.inf
    next_allowed: float = -math.inf


@dataclass(slots=True)
class _Bucket:
    """One address's budget of failed logins over all names: a token bucket refilled over the window."""

    tokens: float
    updated: float


class LoginAttempt:
    """A reserved login check: say how it went with ``failed()`` or ``succeeded()``.

    Used as a context manager; leaving it without either (the store failed, the request was cancelled)
    gives the reservation back, so an error never counts against the user.
    """

    def __init__(self, throttle: LoginThrottle, pair: tuple[str, str], address: str) -> None:
        self._throttle, self._pair, self._address = throttle, pair, address
        self._open = True

    def failed(self, now: float | None = None) -> None:
        if self._open:
            self._open = False
            self._throttle._failed(self._pair, time.monotonic() if now is None else now)

    def succeeded(self) -> None:
        if self._open:
            self._open = False
            self._throttle._succeeded(self._pair, self._address)

    def abandon(self) -> None:
        if self._open:
            self._open = False
            self._throttle._abandoned(self._pair, self._address)

    def __enter__(self) -> LoginAttempt:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.abandon()


class LoginThrottle:
    """How many password checks a login name and an address may have (see the module docstring).

    Per (name, address): ``max_failures`` checks, counting those in flight, are free within ``window``
    seconds; after that, one check at a time, the next allowed ``base_delay`` s after the last failure, then
    twice that after each further failure (1, 2, 4 ... s), never more than ``window``. A success from that
    address, or ``window`` seconds without a failure, clears it. Other addresses are not affected.

    Per address (an IPv6 client counts by its /64): a budget of ``address_budget`` failures (by default
    four times ``max_failures``), refilled evenly over ``window``; a success gives its token back.

    Memory is bounded: forgotten entries are dropped as they go stale, and at most ``max_entries`` are
    kept (the oldest give way first).
    """

    def __init__(self, max_failures: int, window: float, *, address_budget: int | None = None,
                 base_delay: float = 1.0, max_entries: int = 100_000) -> None:
        if max_failures < 1 or window <= 0 or base_delay <= 0:
            raise ValueError("max_failures >= 1, window > 0 and base_delay > 0")
        self.max_failures = max_failures
        self.window = window
        self.address_budget = address_budget if address_budget is not None else 4 * max_failures
        self.base_delay = min(base_delay, window)
        self.max_entries = max_entries
        self._pairs: dict[tuple[str, str], _Backoff] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._operations = 0

    def begin(self, name: str, address: str, now: float | None = None) -> LoginAttempt:
        """Reserve one password check for ``name`` from ``address``, or raise ``Throttled``.

        Synchronous on purpose: the check and the reservation happen in one step of the event loop.
        """
        now = time.monotonic() if now is None else now
        self._housekeeping(now)
        pair = (name.lower(), address)
        backoff = self._pairs.get(pair)
        if backoff is not None and backoff.pending == 0 and now - backoff.last_failure >= self.window:
            del self._pairs[pair]
            backoff = None
        wait = self._pair_wait(backoff, now)
        bucket_key = _network_of(address)
        bucket = self._refilled(bucket_key, now)
        if bucket.tokens < 1:
            wait = max(wait, (1 - bucket.tokens) * self.window / self.address_budget)
        if wait > 0:
            raise Throttled(wait)
        if backoff is None:
            backoff = self._pairs[pair] = _Backoff()
        backoff.pending += 1
        bucket.tokens -= 1
        self._buckets[bucket_key] = bucket
        return LoginAttempt(self, pair, bucket_key)

    def retry_after(self, name: str, address: str, now: float | None = None) -> float:
        """Seconds until ``begin`` would accept (0: now). For display; ``begin`` is the real check."""
        now = time.monotonic() if now is None else now
        wait = self._pair_wait(self._pairs.get((name.lower(), address)), now)
        bucket = self._buckets.get(_network_of(address))
        tokens = self._tokens(bucket, now) if bucket is not None else self.address_budget
        if tokens < 1:
            wait = max(wait, (1 - tokens) * self.window / self.address_budget)
        return wait

    def _pair_wait(self, backoff: _Backoff | None, now: float) -> float:
        if backoff is None or backoff.failures + backoff.pending < self.max_failures:
            return 0.0
        if backoff.pending:
            return self.base_delay  # one check at a time beyond the budget: its failure sets the real delay
        return max(0.0, backoff.next_allowed - now)

    def _failed(self, pair: tuple[str, str], now: float) -> None:
        backoff = self._pairs.get(pair)
        if backoff is None:
            return
        backoff.pending = max(0, backoff.pending - 1)
        backoff.failures += 1
        backoff.last_failure = now
        if backoff.failures >= self.max_failures:
            excess = min(backoff.failures - self.max_failures, 62)
            backoff.next_allowed = now + min(self.base_delay * 2.0 ** excess, self.window)

    def _succeeded(self, pair: tuple[str, str], bucket_key: str) -> None:
        self._pairs.pop(pair, None)
        self._refund(bucket_key)

    def _abandoned(self, pair: tuple[str, str], bucket_key: str) -> None:
        backoff = self._pairs.get(pair)
        if backoff is not None:
            backoff.pending = max(0, backoff.pending - 1)
        self._refund(bucket_key)

    def _refund(self, bucket_key: str) -> None:
        bucket = self._buckets.get(bucket_key)
        if bucket is not None:
            bucket.tokens = min(float(self.address_budget), bucket.tokens + 1)

    def _tokens(self, bucket: _Bucket, now: float) -> float:
        refill = max(0.0, now - bucket.updated) * self.address_budget / self.window
        return min(float(self.address_budget), bucket.tokens + refill)

    def _refilled(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            return _Bucket(float(self.address_budget), now)
        bucket.tokens, bucket.updated = self._tokens(bucket, now), now
        return bucket

    def _housekeeping(self, now: float) -> None:
        """Drop stale entries every so often, and the oldest when there are too many."""
        self._operations += 1
        if self._operations % 1024 and len(self._pairs) + len(self._buckets) <= self.max_entries:
            return
        for pair in [p for p, b in self._pairs.items() if b.pending == 0 and now - b.last_failure >= self.window]:
            del self._pairs[pair]
        for key in [k for k, b in self._buckets.items() if self._tokens(b, now) >= self.address_budget]:
            del self._buckets[key]
        while len(self._pairs) > self.max_entries // 2:
            del self._pairs[next(iter(self._pairs))]
        while len(self._buckets) > self.max_entries // 2:
            del self._buckets[next(iter(self._buckets))]


def _network_of(address: str) -> str:
    """The key of an address's budget: the address, or an IPv6 address's /64 (one host's usual share)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return address
