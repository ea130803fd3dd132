"""Password hashing and the login throttle's arithmetic (pure, no server; sessions: tests/security)."""

from __future__ import annotations

import pytest

from ui_bridge.addresses import real_client
from ui_bridge.auth import LoginThrottle, Throttled, hash_password, new_token, token_hash, verify_password


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


def test_the_throttle_backs_off_one_name_on_one_address_and_leaves_other_addresses_alone() -> None:
    throttle = LoginThrottle(max_failures=3, window=60)
    held = [throttle.begin("anna", "10.0.0.1", now=0) for _ in range(3)]  # reserved before any check ends
    with pytest.raises(Throttled):
        throttle.begin("Anna", "10.0.0.1", now=0)  # a fourth check may not start while three are running
    for attempt in held:
        attempt.failed(now=1)
    with pytest.raises(Throttled) as waited:
        throttle.begin("anna", "10.0.0.1", now=1.5)
    assert waited.value.retry_after == pytest.approx(0.5)  # 1 s after the last failure
    throttle.begin("anna", "10.0.0.2", now=1.5).succeeded()  # another desk: at once
    throttle.begin("oleg", "10.0.0.1", now=1.5).succeeded()  # another name from that desk: at once
    throttle.begin("anna", "10.0.0.1", now=2).failed(now=2)  # then 2 s, 4 s ...
    assert throttle.retry_after("anna", "10.0.0.1", now=2) == pytest.approx(2)
    throttle.begin("anna", "10.0.0.1", now=4).failed(now=4)
    assert throttle.retry_after("anna", "10.0.0.1", now=4) == pytest.approx(4)
    for t in (8, 16, 32, 64):
        throttle.begin("anna", "10.0.0.1", now=t).failed(now=t)
    assert throttle.retry_after("anna", "10.0.0.1", now=64) == pytest.approx(60)  # capped at the window
    with throttle.begin("anna", "10.0.0.1", now=124):
        pass  # left without an outcome (the store failed): it does not count
    throttle.begin("anna", "10.0.0.1", now=124).failed(now=124)  # a window without failures: free again
    assert throttle.retry_after("anna", "10.0.0.1", now=124) == 0
    throttle.begin("anna", "10.0.0.1", now=125).succeeded()
    assert throttle.retry_after("anna", "10.0.0.1", now=125) == 0


def test_one_address_has_a_larger_budget_over_all_names_refilled_over_the_window() -> None:
    throttle = LoginThrottle(max_failures=3, window=60)  # the address budget: 12 failures
    for i in range(12):
        throttle.begin(f"name{i}", "10.0.0.9", now=0).failed(now=0)
    with pytest.raises(Throttled) as waited:
        throttle.begin("someone", "10.0.0.9", now=0)
    assert waited.value.retry_after == pytest.approx(5)  # one failure's worth comes back every 60/12 s
    throttle.begin("someone", "10.0.0.9", now=5).succeeded()  # a success gives its token back
    throttle.begin("else", "10.0.0.9", now=5).succeeded()
    for i in range(12):  # an IPv6 host counts by its /64
        throttle.begin(f"name{i}", f"2001:db8::{i + 1}", now=0).failed(now=0)
    with pytest.raises(Throttled):
        throttle.begin("x", "2001:db8::ffff", now=0)
    throttle.begin("x", "2001:db8:1::1", now=0).succeeded()


def test_the_real_client_is_taken_from_x_forwarded_for_only_behind_a_trusted_proxy() -> None:
    from ipaddress import ip_network

    proxies = [ip_network("127.0.0.1/32"), ip_network("10.1.0.0/16")]
    assert real_client("127.0.0.1", ["203.0.113.7"], proxies) == "203.0.113.7"
    # The client wrote the left part; the proxies appended the right: the right-most untrusted one counts.
    assert real_client("127.0.0.1", ["6.6.6.6, 203.0.113.7", "10.1.2.3"], proxies) == "203.0.113.7"
    assert real_client("192.0.2.1", ["203.0.113.7"], proxies) == "192.0.2.1"  # an untrusted peer's is ignored
    assert real_client("127.0.0.1", [], proxies) == "127.0.0.1"
    assert real_client("127.0.0.1", ["not-an-address"], proxies) == "127.0.0.1"
    assert real_client("127.0.0.1", ["[2001:db8::1]:4711"], proxies) == "2001:db8::1"
    assert real_client("::ffff:127.0.0.1", ["203.0.113.8:5000"], proxies) == "203.0.113.8"
    assert real_client("127.0.0.1", ["203.0.113.7"], []) == "127.0.0.1"
