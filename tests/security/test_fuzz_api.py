"""Property-based fuzz of the panel's JSON API over the real server (issue 9).

Bodies come from the model the server validates contacts with (``NewContact``, via ``model_json_schema()``)
and from small schemas of the login and attach bodies, then are made hostile; query strings and path
parameters carry numbers no column holds, dates out of range, bytes that are not UTF-8; a third test lies
in the request's own headers (Host, Origin, Content-Type, Content-Length). Whatever the request, a user of
the panel must see:

- an HTTP answer below 500, never a connection reset or a connection closed without an answer (except
  after a request that announced more body than it sent and then hung up, which has no answer to wait for);
- the panel still answering ``/api/me`` afterwards;
- nothing in the daemon's log at ERROR and no traceback.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from tests.daemon.conftest import UNIT
from tests.security.conftest import LIVE_LINKEDIDS, LivePanel
from tests.security.fuzzing import (
    ATTACH_SCHEMA,
    LOGIN_SCHEMA,
    Budget,
    RawRequest,
    fuzz_settings,
    json_bodies,
    new_contact_model,
    path_segments,
    query_strings,
    quote,
    raw_requests,
)

REQUEST_TIMEOUT = 15 * UNIT
#: Whose cookie the request carries (None: none), so each role's checks are crossed.
CALLERS = (None, "admin", "admin", "anna", "dmitry", "qa")
CONTENT_TYPES = ("application/json", "application/json; charset=utf-16", "text/plain", "",
                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; x=y")

BODIES = Budget(35)
QUERIES = Budget(25)
RAW = Budget(20)


@pytest.fixture(scope="module")
def http(live_panel: LivePanel) -> Iterator[httpx.Client]:
    # A connection per request: a connection the server closed after one example's answer is not blamed on the next.
    with httpx.Client(base_url=live_panel.url, timeout=REQUEST_TIMEOUT,
                      limits=httpx.Limits(max_keepalive_connections=0)) as client:
        yield client


def send(http: httpx.Client, live: LivePanel, method: str, url: str, caller: str | None,
         body: bytes | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
    headers = dict(headers or {})
    if caller:
        headers["Cookie"] = f"cti_session={live.cookies[caller]}"
    http.cookies.clear()  # only the cookie of ``caller``, never one a response set
    try:
        return http.request(method, url, content=body, headers=headers)
    except httpx.TransportError as exc:
        raise AssertionError(f"{method} {url}: the connection failed ({exc!r})") from None


def assert_alive(http: httpx.Client, live: LivePanel) -> None:
    response = send(http, live, "GET", "/api/me", "admin")
    assert response.status_code == 200, f"the panel no longer answers: {response.status_code} {response.text}"


def assert_no_5xx(response: httpx.Response) -> None:
    event(f"status {response.status_code}")
    request = response.request
    assert response.status_code < 500, (
        f"{request.method} {request.url} answered {response.status_code}: {response.text[:300]}")


# -- JSON bodies ---------------------------------------------------------------------------------------------


def posts() -> st.SearchStrategy[tuple[str, bytes]]:
    """(path, body) for each route that reads a JSON body."""
    attach_paths = st.one_of(st.sampled_from(LIVE_LINKEDIDS), path_segments()).map(
        lambda linkedid: f"/api/calls/{linkedid}/contact")
    return st.one_of(
        st.tuples(st.just("/api/login"), json_bodies(LOGIN_SCHEMA)),
        st.tuples(st.just("/api/contacts"), json_bodies(new_contact_model().model_json_schema())),
        st.tuples(attach_paths, json_bodies(ATTACH_SCHEMA)),
    )


@fuzz_settings(max_examples=300)
@given(post=posts(), caller=st.sampled_from(CALLERS),
       content_type=st.one_of(st.just("application/json"), st.sampled_from(CONTENT_TYPES)),
       own_origin=st.integers(0, 3).map(bool))
# The crashes issue 9 lists, always tried first:
@example(post=("/api/login", b"[" * 5000), caller=None, content_type="application/json", own_origin=True)
@example(post=(f"/api/calls/{LIVE_LINKEDIDS[0]}/contact", b'{"contact_id":1e23}'), caller="admin",
         content_type="application/json", own_origin=True)
@example(post=("/api/contacts", b'{"name":"x","vehicles":[{"year":9223372036854775808}]}'), caller="admin",
         content_type="application/json", own_origin=True)
def test_a_hostile_body_gets_a_4xx_never_a_5xx(live_panel: LivePanel, http: httpx.Client, post: tuple[str, bytes],
                                                caller: str | None, content_type: str, own_origin: bool) -> None:
    if BODIES.spent():
        return
    path, body = post
    headers = {"Content-Type": content_type, "Origin": live_panel.url if own_origin else "http://evil.example"}
    with BODIES.running(), live_panel.example():
        assert_no_5xx(send(http, live_panel, "POST", path, caller, body, headers))
        assert_alive(http, live_panel)


# -- query strings and path parameters ------------------------------------------------------------------------

GET_PATHS = ("/api/calls", "/api/missed", "/api/contacts", "/api/me", "/")


@st.composite
def get_urls(draw: st.DrawFn) -> str:
    path = draw(st.one_of(
        st.sampled_from(GET_PATHS),
        path_segments().map(lambda s: f"/api/missed/{s}"),
        path_segments().map(lambda s: f"/static/{s}"),
    ))
    return f"{path}?{draw(query_strings())}"


@fuzz_settings(max_examples=300)
@given(url=get_urls(), caller=st.sampled_from(CALLERS))
@example(url="/api/calls?offset=99999999999999999999", caller="admin")  # issue 9: OverflowError, 500
@example(url="/api/missed/99999999999999999999", caller="admin")
def test_a_hostile_query_or_path_gets_a_4xx_never_a_5xx(live_panel: LivePanel, http: httpx.Client, url: str,
                                                         caller: str | None) -> None:
    if QUERIES.spent():
        return
    with QUERIES.running(), live_panel.example():
        assert_no_5xx(send(http, live_panel, "GET", url, caller))
        assert_alive(http, live_panel)


# -- lies in the request itself -------------------------------------------------------------------------------


def exchange_raw(live: LivePanel, request: bytes, short: bool) -> bytes:
    """Send the request, hang up our side if it announced more than it sent, and read until the server closes.

    Once a whole first answer is in, our side is hung up too, as a client that got its answer does: a request whose
    ``Connection: close`` the server read as part of a body would otherwise keep the connection open until the
    server's keep-alive timeout (5 s an example). Whatever the server sends after that is still read.
    """
    head = request.partition(b" ")[0] == b"HEAD"
    with socket.create_connection(live.address, timeout=REQUEST_TIMEOUT) as sock:
        sock.sendall(request)
        if short:
            sock.shutdown(socket.SHUT_WR)
        received, hung_up = b"", short
        try:
            while chunk := sock.recv(65536):
                received += chunk
                if not hung_up and _whole_answer(received, head):
                    sock.shutdown(socket.SHUT_WR)
                    hung_up = True
        except ConnectionResetError:
            # A request with bytes past its announced end may be cut short after its answer.
            assert received.startswith(b"HTTP/1.1 "), f"the server reset the connection after {received[:200]!r}"
        except TimeoutError:
            raise AssertionError(f"no answer and no close in {REQUEST_TIMEOUT:.0f} s: {received[:200]!r}") from None
        return received


def _whole_answer(received: bytes, head: bool) -> bool:
    """``received`` holds a whole HTTP answer: its headers, and the body its Content-Length announces."""
    headers, found, body = received.partition(b"\r\n\r\n")
    if not found:
        return False
    lengths = [line.partition(b":")[2].strip() for line in headers.split(b"\r\n")[1:]
               if line.partition(b":")[0].strip().lower() == b"content-length"]
    if head or headers[9:12] in (b"204", b"304"):
        return True
    return len(lengths) == 1 and lengths[0].isdigit() and len(body) >= int(lengths[0])


@fuzz_settings(max_examples=400)
@given(lie=raw_requests())
@example(lie=RawRequest(b"POST /api/login HTTP/1.1\r\nHost: <HOST>\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 100\r\nConnection: close\r\n\r\n{\"name\":", short=True))  # hangs up
@example(lie=RawRequest(b"GET /api/login HTTP/1.1\r\nHost: <HOST>\r\nTransfer-Encoding: chunked\r\n"
                        b"Connection: close\r\n\r\nzz\r\n", short=True))  # a chunked body that is not
@example(lie=RawRequest(b"HEAD /api/me HTTP/1.1\r\nHost: <HOST>\r\nTransfer-Encoding: chunked\r\n"
                        b"Connection: close\r\n\r\nzz\r\n", short=True))
def test_a_request_that_lies_in_its_headers_gets_a_4xx_never_a_5xx(live_panel: LivePanel, http: httpx.Client,
                                                                     lie: RawRequest) -> None:
    if RAW.spent():
        return
    request = lie.render("{}:{}".format(*live_panel.address), live_panel.cookies["admin"])
    with RAW.running(), live_panel.example():
        answer = exchange_raw(live_panel, request, lie.short)
        if answer or not lie.short:
            assert answer.startswith(b"HTTP/1.1 "), f"no HTTP answer: {answer[:200]!r}"
            status_line = answer.partition(b"\r")[0]
            event(f"status {status_line[9:12].decode()}")
            assert int(status_line[9:12]) < 500, f"the server answered {status_line!r}"
        assert_alive(http, live_panel)


def test_the_fuzz_reaches_the_contact_model() -> None:
    """The body schema is the server's own model, so a new field is fuzzed with no change here."""
    schema = new_contact_model().model_json_schema()
    assert {"name", "phones", "vehicles"} <= set(schema["properties"])
    assert quote("\ud800") == "%ED%A0%80"
