"""Property-based fuzz of the WebSocket protocol over the real server (issue 9).

Messages come from the published schema (``docs/protocol.schema.json``), then are made hostile, mixed with
frames no schema describes. Whatever a logged-in client sends, a user of the panel must see:

- every message answered by a ``reply`` or an ``error`` (carrying the request's ``id`` when it was clean JSON
  with a valid one), or the connection closed with a close frame: never a TCP drop, never an "internal
  error" close;
- the server still answering a ping on a fresh socket afterwards;
- nothing in the daemon's log at ERROR, no traceback, and no AMI action split by a value.

Bounded: ``fuzzing.fuzz_settings`` (examples, reproducible in CI) and a wall-clock ``Budget``.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from hypothesis import event, example, given
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.sync.client import ClientConnection

from tests.daemon.conftest import UNIT
from tests.security.conftest import WATCHER, LivePanel
from tests.security.fuzzing import Budget, Frame, RawRequest, frames, fuzz_settings, handshakes
from ui_bridge.server import HARD_FRAME_LIMIT

#: How long the server has to answer the frames of one example.
ANSWER_TIMEOUT = 10 * UNIT
#: How long the server has to answer a handshake (it needs no PBX, no store: a slow answer is no answer).
HANDSHAKE_TIMEOUT = 5 * UNIT
#: Who sends the fuzzed messages: each role takes other paths through the command checks.
SENDERS = ("admin", "anna", "dmitry", "qa")

MESSAGES = Budget(50)
HANDSHAKES = Budget(20)


def exchange(live: LivePanel, user: str, sent: list[Frame]) -> list[dict[str, Any]]:
    """Send the frames one by one on a fresh socket, each once the one before is answered; return the answers.

    One at a time, because a server that closes the connection (with a close frame) may reset it when more
    data arrives after its close: frames sent on regardless would turn a clean close into a false "drop".
    Fails on a TCP drop without a close frame, an internal-error close, an unanswered frame, or an answer
    whose id is not the request's.
    """
    answers: list[dict[str, Any]] = []
    with live.websocket(user) as ws:
        for frame in sent:
            try:
                ws.send(frame.data, text=not frame.binary)
                answer = _answer(ws)
            except ConnectionClosed as exc:
                _assert_closed_cleanly(exc, frame)
                return answers  # a close frame answers this frame and the rest
            if frame.clean_id is not None and frame.size() <= live.max_message_bytes:
                assert answer.get("id") == frame.clean_id, f"{frame} was answered with another id: {answer}"
            answers.append(answer)
            event(f"answer: {answer.get('code') or answer.get('data', {}).get('action') or 'reply'}")
    return answers


def _answer(ws: ClientConnection) -> dict[str, Any]:
    """The next ``reply`` or ``error`` (other messages, such as ``state`` or a pop, are passed over)."""
    deadline = time.monotonic() + ANSWER_TIMEOUT
    while True:
        try:
            message: dict[str, Any] = json.loads(ws.recv(timeout=max(deadline - time.monotonic(), 0)))
        except TimeoutError:
            raise AssertionError(f"no answer in {ANSWER_TIMEOUT:.0f} s") from None
        if message.get("type") in ("reply", "error"):
            return message


def _assert_closed_cleanly(exc: ConnectionClosed, frame: Frame) -> None:
    if exc.rcvd is None:
        # A frame over the server's hard limit fails the connection at once (RFC 6455, 7.1.7): the reset that
        # follows may beat the close frame to the client.
        assert frame.size() > HARD_FRAME_LIMIT, f"the server dropped the connection without a close frame ({exc})"
        return
    assert exc.rcvd.code != CloseCode.INTERNAL_ERROR, f"the server failed: {exc}"


def assert_alive(live: LivePanel) -> None:
    """A ping on a fresh socket, from a user the fuzz does not use, is answered."""
    with live.websocket(WATCHER) as ws:
        ws.send(json.dumps({"type": "ping", "id": "alive"}))
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while True:
            message = json.loads(ws.recv(timeout=max(deadline - time.monotonic(), 0)))
            if message.get("type") in ("reply", "error") and message.get("id") == "alive":
                return


@fuzz_settings(max_examples=600)
@given(user=st.sampled_from(SENDERS), sent=st.lists(frames(), min_size=1, max_size=4))
# The crashes issue 9 lists, always tried first:
@example(user="admin", sent=[Frame("[" * 8000 + "]" * 8000)])  # RecursionError, dropped socket
@example(user="admin", sent=[Frame('{"type":"ping","id":"\\ud800"}')])  # the id cannot be written back
@example(user="admin", sent=[Frame('{"type":"missed.close","id":"1","missed_id":99999999999999999999}', clean_id="1")])
@example(user="anna", sent=[Frame(b"\xff\xfe")])  # a text frame that is not UTF-8
@example(user="anna", sent=[Frame('{"type":"queue.pause","id":"1","queue":"x\\r\\n\\r\\nAction: FuzzInjected",'
                                  '"reason":"x\\r\\nFuzzInjected: 1"}', clean_id="1")])  # AMI injection
def test_every_message_is_answered_or_closed_and_nothing_crashes(live_panel: LivePanel, user: str,
                                                                  sent: list[Frame]) -> None:
    if MESSAGES.spent():
        return
    with MESSAGES.running(), live_panel.example():
        exchange(live_panel, user, sent)
        assert_alive(live_panel)


# -- the opening handshake --------------------------------------------------------------------------------

#: A handshake as a browser sends it, logged in as the admin.
HANDSHAKE = (b"GET /ws HTTP/1.1\r\nHost: <HOST>\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\nSec-WebSocket-Version: 13\r\n"
             b"Origin: http://<HOST>\r\nCookie: cti_session=<COOKIE>\r\n\r\n")


def send_raw(live: LivePanel, request: bytes) -> bytes:
    """Send ``request`` on a new connection and read the response head."""
    with socket.create_connection(live.address, timeout=HANDSHAKE_TIMEOUT) as sock:
        sock.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                raise AssertionError(f"no answer in {HANDSHAKE_TIMEOUT:.0f} s, and the connection is held open: "
                                     f"{received[:200]!r}") from None
            if not chunk:
                break
            received += chunk
        if received.startswith(b"HTTP/1.1 101"):
            sock.sendall(b"\x88\x82\x00\x00\x00\x00\x03\xe8")  # a masked close frame, 1000: goodbye
    return received


@fuzz_settings(max_examples=250)
@given(handshake=handshakes())
@example(handshake=RawRequest(HANDSHAKE.replace(b"Host: <HOST>", b"Host: evil.example:8080")))  # refused
@example(handshake=RawRequest(HANDSHAKE.replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8")))
@example(handshake=RawRequest(HANDSHAKE.replace(b"\r\n\r\n", b"\r\nX-Note: a\x7fb\r\n\r\n")))  # never answered
@example(handshake=RawRequest(HANDSHAKE.replace(b"\r\n\r\n", b"\r\nX-Note: " + b"x" * 9000 + b"\r\n\r\n")))
def test_a_hostile_handshake_is_refused_with_a_4xx_and_nothing_crashes(live_panel: LivePanel,
                                                                       handshake: RawRequest) -> None:
    if HANDSHAKES.spent():
        return
    request = handshake.render("{}:{}".format(*live_panel.address), live_panel.cookies["admin"])
    with HANDSHAKES.running(), live_panel.example():
        try:
            head = send_raw(live_panel, request)
        except ConnectionResetError:
            raise AssertionError("the server reset the connection") from None
        assert head.startswith(b"HTTP/1.1 "), f"no HTTP response: {head[:200]!r}"
        status_line = head.partition(b"\r")[0]
        event(f"status {status_line[9:12].decode()}")
        assert int(status_line[9:12]) < 500, f"the server answered {status_line!r}"
        assert_alive(live_panel)
