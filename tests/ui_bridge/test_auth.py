"""Password hashing, sessions and the failed-login limiter (pure, no server)."""

from __future__ import annotations

from store.repository import User
from ui_bridge.auth import LoginLimiter, Sessions, hash_password, new_token, token_hash, verify_password


def test_a_password_hash_verifies_only_the_same_password_and_never_holds_it() -> None:
    stored = hash_password("колесо-2026")
    assert "колесо" not in stored and stored.startswith("scrypt$")
    assert verify_password("колесо-2026", stored)
    assert not verify_password("колесо-2027", stored)
    assert hash_password("колесо-2026") != stored  # salted
    for broken in ("", "scrypt$1$2", "md5$x$y$z$a$b", "scrypt$16384$8$1$!!$!!", None):
        assert not verify_password("колесо-2026", broken)


def test_tokens_are_random_and_stored_as_hashes() -> None:
    a, b = new_token(), new_token()
    assert a != b and len(a) > 40
    assert token_hash(a) == token_hash(a) != token_hash(b)
    assert a not in token_hash(a)


def test_sessions_expire_unless_used_and_end_on_logout() -> None:
    user = User(name="anna", role="agent", extension="101")
    sessions = Sessions(lifetime=100)
    s = sessions.start(user, now=0)
    assert sessions.get(s.token, now=90) is not None  # used: extended to 190
    assert sessions.get(s.token, now=180) is not None
    assert sessions.get(s.token, now=400) is None
    s2 = sessions.start(user, now=500)
    sessions.end(s2.token)
    assert sessions.get(s2.token, now=501) is None
    assert sessions.get(None) is None and sessions.get("forged") is None


def test_failed_logins_are_limited_per_name_and_per_address() -> None:
    limiter = LoginLimiter(max_failures=3, window=60)
    for t in range(3):
        assert limiter.retry_after("anna", "10.0.0.1", now=t) == 0
        limiter.failed("anna", "10.0.0.1", now=t)
    assert limiter.retry_after("anna", "10.0.0.2", now=3) > 0  # the name is locked from everywhere
    assert limiter.retry_after("oleg", "10.0.0.1", now=3) > 0  # and the address for every name
    assert limiter.retry_after("oleg", "10.0.0.9", now=3) == 0
    assert 56 < limiter.retry_after("anna", "10.0.0.2", now=3) <= 60
    assert limiter.retry_after("anna", "10.0.0.1", now=61) == 0  # the window has passed
