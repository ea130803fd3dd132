"""The SIP messages the tap writes and reads itself, beside pyVoIP: REGISTER with its digest answer (RFC 3261 §10,
RFC 2617 §3.2.2), responses (read, and written to requests pyVoIP does not answer well), the tap's own BYE.

Why not pyVoIP's: its ``SIPClient.register`` gives up for good after ``REGISTER_FAILURE_THRESHOLD`` (3) failures and
stops the phone; its digest ignores ``qop`` (Asterisk's PJSIP challenges with ``qop="auth"``) and signs a URI other
than the request's; it reads whatever datagram comes next as the registrar's answer, so an INVITE arriving during a
re-registration is lost; it cannot parse an ``OPTIONS`` (Asterisk's qualify) at all; its BYE carries the PBX's own
``Via``. The tap (``companion/live/sip_tap.py``) sends what this module builds, matches the registrar's answer by
Call-ID and CSeq, and re-registers after any failure with a back-off, forever. Pure: bytes and strings, no socket.

The tap's calls are named by the caller id the daemon gives the PBX's ``Originate``: :func:`tap_user` /
:func:`parse_tap_user` (``tap-<id>-<lane>``), so a call nobody asked for is refused.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field

_PARAM = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]+)')


@dataclass(frozen=True, slots=True)
class Challenge:
    """A ``WWW-Authenticate``/``Proxy-Authenticate: Digest ...`` header's parameters."""

    realm: str
    nonce: str
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    algorithm: str = "MD5"


def parse_challenge(header: str) -> Challenge | None:
    """The digest challenge of a 401/407, or None when there is none we can answer (not Digest, not MD5)."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    params = {k.lower(): v[1:-1] if v.startswith('"') else v for k, v in _PARAM.findall(rest)}
    if "realm" not in params or "nonce" not in params:
        return None
    algorithm = params.get("algorithm", "MD5")
    if algorithm.upper() != "MD5":
        return None
    qop = tuple(q.strip() for q in params.get("qop", "").split(",") if q.strip())
    return Challenge(params["realm"], params["nonce"], qop, params.get("opaque"), algorithm)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def digest_authorization(challenge: Challenge, *, method: str, uri: str, username: str, password: str,
                         nc: int = 1, cnonce: str | None = None) -> str:
    """The ``Digest ...`` value answering ``challenge`` for a request (RFC 2617 §3.2.2; ``qop=auth`` when offered)."""
    ha1 = _md5(f"{username}:{challenge.realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    parts = [f'username="{username}"', f'realm="{challenge.realm}"', f'nonce="{challenge.nonce}"', f'uri="{uri}"']
    if "auth" in challenge.qop:
        cnonce = cnonce or secrets.token_hex(8)
        count = f"{nc:08x}"
        response = _md5(f"{ha1}:{challenge.nonce}:{count}:{cnonce}:auth:{ha2}")
        parts += [f'response="{response}"', "qop=auth", f"nc={count}", f'cnonce="{cnonce}"']
    else:
        parts.append(f'response="{_md5(f"{ha1}:{challenge.nonce}:{ha2}")}"')
    parts.append("algorithm=MD5")
    if challenge.opaque is not None:
        parts.append(f'opaque="{challenge.opaque}"')
    return "Digest " + ", ".join(parts)


@dataclass(slots=True)
class Registration:
    """One registration dialogue: the same Call-ID and From tag for every REGISTER, CSeq counting up (RFC 3261
    §10.2: a registrar orders a client's refreshes by them)."""

    server: str
    server_port: int
    username: str
    password: str
    #: Where the PBX reaches the tap (the Contact and Via): the advertised address and the SIP port.
    contact_host: str
    contact_port: int
    expires: int = 120
    call_id: str = field(default_factory=lambda: secrets.token_hex(16))
    tag: str = field(default_factory=lambda: secrets.token_hex(6))
    cseq: int = 0

    @property
    def uri(self) -> str:
        port = "" if self.server_port == 5060 else f":{self.server_port}"
        return f"sip:{self.server}{port}"

    def request(self, *, authorization: str | None = None, proxy: bool = False, expires: int | None = None) -> bytes:
        """The next REGISTER (``expires=0`` removes the binding: the tap's goodbye)."""
        self.cseq += 1
        lines = [
            f"REGISTER {self.uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.contact_host}:{self.contact_port};branch=z9hG4bK{secrets.token_hex(10)};rport",
            "Max-Forwards: 70",
            f"From: <sip:{self.username}@{self.server}>;tag={self.tag}",
            f"To: <sip:{self.username}@{self.server}>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} REGISTER",
            f"Contact: <sip:{self.username}@{self.contact_host}:{self.contact_port};transport=udp>",
            f"Expires: {self.expires if expires is None else expires}",
            "Allow: INVITE, ACK, BYE, CANCEL",
            "User-Agent: cti-companion live tap",
        ]
        if authorization is not None:
            lines.append(f"{'Proxy-Authorization' if proxy else 'Authorization'}: {authorization}")
        lines.append("Content-Length: 0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")

    def answer(self, challenge: Challenge) -> str:
        return digest_authorization(challenge, method="REGISTER", uri=self.uri, username=self.username,
                                    password=self.password)


def granted_expiry(expires_header: str | None, contact_header: str | None, asked: int) -> int:
    """How long the registrar kept the binding: the Contact's ``expires=``, else ``Expires:``, else what we asked."""
    for text in (contact_header, expires_header):
        if not text:
            continue
        found = re.search(r"expires\s*=\s*(\d+)", text, re.IGNORECASE) if text is contact_header else \
            re.fullmatch(r"\s*(\d+)\s*", text)
        if found:
            return int(found.group(1))
    return asked


def backoff(failures: int, *, first: float, most: float) -> float:
    """Seconds before the next try after ``failures`` failures in a row: doubling from ``first``, at most ``most``."""
    return float(min(most, first * (2 ** max(0, min(failures - 1, 30)))))


#: The caller id (From user) of a tap's call: ``tap-<id>-<lane>``; the id is the daemon's, unguessable.
_TAP_USER = re.compile(r"tap-([A-Za-z0-9]{1,64})-(agent|customer|mixed)")
LANES = ("agent", "customer", "mixed")


def tap_user(tap_id: str, lane: str) -> str:
    """The caller id the daemon gives the PBX's call to the tap for one lane of one tap."""
    name = f"tap-{tap_id}-{lane}"
    if not _TAP_USER.fullmatch(name):
        raise ValueError(f"not a tap id and lane: {tap_id!r}, {lane!r}")
    return name


def parse_tap_user(text: str | None) -> tuple[str, str] | None:
    """``(tap id, lane)`` of a caller id, or None when it names no tap."""
    found = _TAP_USER.fullmatch(text or "")
    return (found.group(1), found.group(2)) if found else None


@dataclass(frozen=True, slots=True)
class SipResponse:
    """A response's status line and headers (names lower-cased, compact forms expanded; the first of each)."""

    status: int
    reason: str
    headers: dict[str, str]

    @property
    def call_id(self) -> str:
        return self.headers.get("call-id", "")

    @property
    def cseq(self) -> tuple[int, str]:
        number, _, method = self.headers.get("cseq", "").strip().partition(" ")
        return (int(number) if number.isdigit() else -1, method.strip().upper())


_COMPACT = {"i": "call-id", "f": "from", "t": "to", "v": "via", "m": "contact", "l": "content-length"}
#: A datagram larger than this is no SIP message the tap takes (UDP; RFC 3261 §18.1.1 keeps them under the MTU).
MAX_MESSAGE = 16384


def _header_lines(raw: bytes) -> list[str] | None:
    if len(raw) > MAX_MESSAGE:
        return None
    head, _, _ = raw.partition(b"\r\n\r\n")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text.split("\r\n")


def parse_response(raw: bytes) -> SipResponse | None:
    """A datagram as a SIP response, or None when it is none (a request, garbage)."""
    lines = _header_lines(raw)
    if not lines or not lines[0].startswith("SIP/2.0 "):
        return None
    _, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if not (code.isdigit() and len(code) == 3):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            continue
        key = name.strip().lower()
        headers.setdefault(_COMPACT.get(key, key), value.strip())
    return SipResponse(int(code), reason.strip(), headers)


def request_method(raw: bytes) -> str | None:
    """The method of a datagram that is a SIP request (``INVITE``, ``OPTIONS``...), or None."""
    lines = _header_lines(raw)
    if not lines:
        return None
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] != "SIP/2.0" or not parts[0].isalpha() or not parts[0].isupper():
        return None
    return parts[0]


def response_to(raw_request: bytes, status: int, reason: str, *, to_tag: str | None = None) -> bytes | None:
    """A response to a request, its Via, From, To, Call-ID and CSeq copied (RFC 3261 §8.2.6.2); ``to_tag`` added to
    a To without one. None when the request lacks one of them (nothing to answer to)."""
    lines = _header_lines(raw_request)
    if not lines:
        return None
    copied: dict[str, list[str]] = {"via": [], "from": [], "to": [], "call-id": [], "cseq": []}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        key = _COMPACT.get(name.strip().lower(), name.strip().lower())
        if colon and key in copied:
            copied[key].append(value.strip())
    if not all(copied.values()):
        return None
    to = copied["to"][0]
    if to_tag is not None and ";tag=" not in to:
        to = f"{to};tag={to_tag}"
    out = [f"SIP/2.0 {status} {reason}"]
    out += [f"Via: {via}" for via in copied["via"]]
    out += [f"From: {copied['from'][0]}", f"To: {to}", f"Call-ID: {copied['call-id'][0]}",
            f"CSeq: {copied['cseq'][0]}"]
    if status == 200:
        out.append("Allow: INVITE, ACK, BYE, CANCEL, OPTIONS")
        out.append("Accept: application/sdp")
    out.append("Content-Length: 0")
    return ("\r\n".join(out) + "\r\n\r\n").encode("utf-8")


def bye_request(*, target: str, from_header: str, to_header: str, call_id: str, cseq: int, via_host: str,
                via_port: int, contact_user: str) -> bytes:
    """The tap's BYE for a call it answered: our side's To (with our tag) as From, the PBX's From as To, a fresh Via
    of our own (RFC 3261 §15.1.1, §12.2.1.1), sent to the Contact the INVITE gave."""
    lines = [
        f"BYE {target} SIP/2.0",
        f"Via: SIP/2.0/UDP {via_host}:{via_port};branch=z9hG4bK{secrets.token_hex(10)};rport",
        "Max-Forwards: 70",
        f"From: {from_header}",
        f"To: {to_header}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} BYE",
        f"Contact: <sip:{contact_user}@{via_host}:{via_port}>",
        "User-Agent: cti-companion live tap",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
