"""The SIP the tap writes itself (``companion/live/sip_messages.py``) and ``[live]``'s checks at load."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from companion.live.sip_messages import (
    Challenge,
    backoff,
    digest_authorization,
    granted_expiry,
    parse_challenge,
    parse_response,
    parse_tap_user,
    request_method,
    response_to,
    tap_user,
)
from ui_bridge.live_settings import LiveSettings


def test_digest_is_rfc_2617s_own_example() -> None:
    """RFC 2617 §3.5: Mufasa's request, qop=auth, gives the response the RFC prints."""
    challenge = parse_challenge('Digest realm="testrealm@host.com", qop="auth,auth-int", '
                                'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    assert challenge == Challenge("testrealm@host.com", "dcd98b7102dd2f0e8b11d0f600bfb0c093", ("auth", "auth-int"),
                                  "5ccc069c403ebaf9f0171e9517f40e41")
    value = digest_authorization(challenge, method="GET", uri="/dir/index.html", username="Mufasa",
                                 password="Circle Of Life", nc=1, cnonce="0a4f113b")
    assert 'response="6629fae49393a05397450978507c4ef1"' in value and "qop=auth" in value
    assert parse_challenge('Basic realm="x"') is None
    assert parse_challenge('Digest realm="x", nonce="y", algorithm=SHA-256') is None


def test_responses_and_requests_are_read_and_answered() -> None:
    response = parse_response(b"SIP/2.0 401 Unauthorized\r\ni: abc\r\nCSeq: 3 REGISTER\r\n"
                              b'WWW-Authenticate: Digest realm="a", nonce="b"\r\n\r\n')
    assert response is not None and response.status == 401 and response.call_id == "abc"
    assert response.cseq == (3, "REGISTER")
    assert parse_response(b"INVITE sip:x SIP/2.0\r\n\r\n") is None and parse_response(b"\xff\xfe") is None
    options = (b"OPTIONS sip:tap@h SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n"
               b"To: <sip:tap@h>\r\nCall-ID: q\r\nCSeq: 7 OPTIONS\r\n\r\n")
    assert request_method(options) == "OPTIONS" and request_method(b"hello") is None
    answer = response_to(options, 200, "OK", to_tag="t9")
    assert answer is not None and answer.startswith(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx")
    assert b"To: <sip:tap@h>;tag=t9\r\n" in answer and b"CSeq: 7 OPTIONS\r\n" in answer
    assert response_to(b"OPTIONS sip:x SIP/2.0\r\n\r\n", 200, "OK") is None


def test_tap_names_expiry_and_backoff() -> None:
    assert parse_tap_user(tap_user("a1b2", "customer")) == ("a1b2", "customer")
    assert parse_tap_user("tap-a1b2-boss") is None and parse_tap_user("4951234567") is None
    with pytest.raises(ValueError):
        tap_user("a b", "agent")
    assert granted_expiry("90", "<sip:x@y>;expires=45", 120) == 45
    assert granted_expiry("90", None, 120) == 90 and granted_expiry(None, None, 120) == 120
    assert [backoff(n, first=1, most=60) for n in (1, 2, 3, 7, 50)] == [1, 2, 4, 60, 60]


def test_live_settings_refuse_what_would_fail_later() -> None:
    assert LiveSettings().enabled is False  # off by default: nothing to give
    base = {"enabled": True, "secret": "x", "advertised_host": "10.0.0.5"}
    assert LiveSettings.model_validate(base).contact_host == "10.0.0.5"
    for wrong, words in [
        ({"sip_port": 5060, "server": "127.0.0.1"}, "5060"),
        ({"secret": None}, "secret"),
        ({"secret_env": "X"}, "either"),
        ({"advertised_host": None}, "advertised_host"),
        ({"rtp_port_first": 40000, "rtp_port_last": 40003, "max_taps": 8}, "two per tap"),
        ({"username": "tap\r\nVia: evil"}, "letters"),
        ({"server": "a b"}, "host"),
    ]:
        with pytest.raises(ValidationError, match=words):
            LiveSettings.model_validate({**base, **wrong})
