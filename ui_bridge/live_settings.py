"""``[live]``: the SIP audio tap the PBX streams calls in progress to (issue 17, ``companion/live/``).

Why here: the daemon (``companion/live/``) taps, ``cti check-config`` reports, and the panel will say whether live
transcripts are on; ``ui_bridge`` is the lowest package all of them may import (``docs/architecture.md``), as for
``[mail]``. ``companion/config.py`` puts the section into ``Settings``.

The tap is a SIP endpoint of its own on the PBX (a PJSIP endpoint with ``ulaw``/``alaw`` only: ``docs/pbx-setup.md``):
it registers as ``username`` at ``server``, listens on ``sip_port`` and takes audio on ``rtp_ports``, and tells the PBX
to reach it at ``advertised_host``. What is refused at load because it would fail later and far from its cause: port
5060 on the PBX's own host (the PBX listens there), an RTP range smaller than two ports per tap, a wildcard address
advertised, a secret given twice or not at all.
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from asterisk.settings import ConfigError, Section

_HOST = re.compile(r"[A-Za-z0-9._:-]{1,253}")
#: A SIP user name: what goes into the From, To and Contact headers unquoted.
_USER = re.compile(r"[A-Za-z0-9._~-]{1,64}")
#: Lanes one live worker (one core, a small Vosk model) decodes with each final within 1.5 s of its words, measured by
#: ``bench/live.py`` (docs/benchmarks.md: finals on time at 4 lanes, 3 s late at 8).
LANES_PER_WORKER = 4


def _host(value: str) -> str:
    if not _HOST.fullmatch(value):
        raise ValueError("a host name or an IP address")
    return value


def _user(value: str) -> str:
    if not _USER.fullmatch(value):
        raise ValueError("letters, digits and . _ ~ - only (it goes into SIP headers)")
    return value


def _secret(value: str) -> str:
    if not value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("one line of text, not empty")
    return value


Host = Annotated[str, AfterValidator(_host)]
Port = Annotated[int, Field(ge=1, le=65535)]
SipUser = Annotated[str, AfterValidator(_user)]
Secret = Annotated[str, AfterValidator(_secret)]


class LiveSettings(Section):
    """``[live]``: the tap's SIP account, its addresses and ports, its limits, how its audio is cleaned up."""

    #: Whether calls are tapped live at all (needs the ``live`` extra: ``pip install 'cti-companion[live]'``).
    enabled: bool = False
    #: The PBX's SIP address and port (where the tap registers, and where calls come from).
    server: Host = "127.0.0.1"
    server_port: Port = 5060
    #: The tap's SIP account on the PBX (a PJSIP endpoint/aor/auth of its own), with ``secret`` or ``secret_env``.
    username: SipUser = "cti-tap"
    secret: Secret | None = None
    secret_env: str | None = None
    #: The local address the tap's SIP and RTP sockets bind to.
    bind_host: Host = "0.0.0.0"
    #: The address the PBX reaches the tap at (Contact, Via, the SDP's ``c=``): this machine's address as the PBX sees
    #: it. Unset: ``bind_host``, which then must be a real address.
    advertised_host: Host | None = None
    #: The tap's SIP port: never 5060 on the PBX's own host.
    sip_port: Port = 5070
    #: The UDP ports the tap takes audio on, both included: one per tapped lane (two per call with agent and customer
    #: apart). Keep them apart from the PBX's own ``rtp.conf`` range when both run on one host.
    rtp_port_first: Port = 40000
    rtp_port_last: Port = 40199
    #: How long a registration lasts (seconds; renewed before it runs out) and how long one attempt waits for the PBX.
    register_expires: Annotated[int, Field(ge=30, le=3600)] = 120
    register_timeout: Annotated[float, Field(gt=0, le=60)] = 5.0
    #: The back-off between failed registrations: the first wait, doubled after each failure up to the last. It never
    #: gives up: a PBX that comes back finds the tap registering again.
    retry_first_seconds: Annotated[float, Field(gt=0, le=600)] = 1.0
    retry_max_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0
    #: At most this many calls tapped at once; the others are transcribed after the call as before. The default fits
    #: one live worker (``LANES_PER_WORKER``): raise it together with ``workers``.
    max_taps: Annotated[int, Field(ge=1, le=500)] = 2
    #: Seconds of later audio a missing packet is waited for (reordering) before it counts as lost.
    jitter_window: Annotated[float, Field(gt=0, le=1)] = 0.06
    #: The longest silence a lost stretch or a timestamp jump becomes (seconds).
    max_gap: Annotated[float, Field(gt=0, le=10)] = 1.0
    #: A lane's audio waiting for a slow consumer, in seconds, before the oldest is dropped.
    max_backlog: Annotated[float, Field(ge=1, le=600)] = 30.0
    # -- which calls are tapped, and how the PBX is asked (the daemon's side: ``companion/live/manager.py``)
    #: Which answered calls are tapped, as ``[recording] record`` chooses what to record: ``all``, ``inbound`` (from a
    #: trunk), ``selected`` (through one of ``queues`` or on one of ``dids``).
    calls: Literal["all", "inbound", "selected"] = "selected"
    queues: tuple[Annotated[str, Field(min_length=1, max_length=80)], ...] = ()
    dids: tuple[Annotated[str, Field(min_length=1, max_length=32)], ...] = ()
    #: The channel technology the PBX dials the tap's endpoint with (``<technology>/<username>``).
    technology: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,20}$")] = "PJSIP"
    #: Unset: the spy call runs ``ChanSpy`` as the Originate's application (nothing in the dialplan). Set: it enters
    #: this dialplan context at extension ``spy`` with ``CTI_SPY_CHANNEL`` and ``CTI_SPY_OPTIONS`` set, for a site
    #: whose AMI user may not start applications (``docs/pbx-setup.md``).
    spy_context: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9_.-]{1,80}$")] = None
    #: Agent and customer on lanes of their own (two spy calls, ``ChanSpy`` option ``o`` on each side's channel);
    #: False: one spy call on the agent's channel, both voices mixed.
    split_lanes: bool = True
    #: Live recogniser processes (``recognizer/live.py``): each holds several lanes and one copy of the model.
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    #: Seconds of a lane's audio that may wait for its live recogniser (workers short of CPU) before new audio is
    #: dropped: memory stays bounded and what comes that late is of little use live; the call is still transcribed
    #: whole after it ends (``recognizer/live.py``).
    max_lag: Annotated[float, Field(ge=1, le=600)] = 5.0
    #: Seconds the PBX's spy call is waited for after the Originate; a call whose tap does not come is transcribed
    #: after it ends, as without ``[live]``.
    answer_timeout: Annotated[float, Field(gt=0, le=60)] = 5.0

    @property
    def lanes(self) -> int:
        """Lanes decoded at once when every tap is in use: two per call with ``split_lanes``, else one."""
        return self.max_taps * (2 if self.split_lanes else 1)

    def capacity_warning(self) -> str | None:
        """Why the live words will come late when every tap is in use (logged at start), or None: more lanes than
        ``workers`` decode on time (``LANES_PER_WORKER`` each)."""
        if self.lanes <= self.workers * LANES_PER_WORKER:
            return None
        needed = -(-self.lanes // LANES_PER_WORKER)
        return (f"[live] max_taps = {self.max_taps} is {self.lanes} lanes at once, and one live worker decodes about "
                f"{LANES_PER_WORKER} on time (docs/benchmarks.md): with workers = {self.workers}, live words come "
                f"late when that many calls are tapped. Set workers = {needed} (a core and a copy of the model each) "
                f"or max_taps = {self.workers * LANES_PER_WORKER // (2 if self.split_lanes else 1)}")

    @model_validator(mode="after")
    def _consistent(self) -> LiveSettings:
        if self.secret is not None and self.secret_env is not None:
            raise ValueError("give either 'secret' or 'secret_env', not both")
        if self.enabled and self.secret is None and self.secret_env is None:
            raise ValueError("the tap needs its SIP password: give 'secret' or 'secret_env'")
        if self.rtp_port_first > self.rtp_port_last:
            raise ValueError("rtp_port_first is after rtp_port_last")
        if self.rtp_port_last - self.rtp_port_first + 1 < 2 * self.max_taps:
            raise ValueError(f"the RTP range holds {self.rtp_port_last - self.rtp_port_first + 1} ports: two per tap "
                             f"are needed ({2 * self.max_taps} for max_taps = {self.max_taps})")
        if self.rtp_port_first <= self.sip_port <= self.rtp_port_last:
            raise ValueError("sip_port is inside the RTP range")
        if self.sip_port == 5060 and self._same_host_as_pbx():
            raise ValueError("sip_port 5060 is the PBX's own SIP port on this host: take another (e.g. 5070)")
        if self.retry_first_seconds > self.retry_max_seconds:
            raise ValueError("retry_first_seconds is more than retry_max_seconds")
        if self.enabled and self.advertised_host is None and _wildcard(self.bind_host):
            raise ValueError(f"bind_host {self.bind_host} is every address: give 'advertised_host', the address the "
                             "PBX reaches this machine at")
        if self.advertised_host is not None and _wildcard(self.advertised_host):
            raise ValueError("advertised_host is the address the PBX reaches the tap at, not a wildcard")
        return self

    def _same_host_as_pbx(self) -> bool:
        ours = {self.bind_host, self.advertised_host or self.bind_host}
        return self.server in ours or _loopback(self.server) or any(_wildcard(h) for h in ours)

    @property
    def contact_host(self) -> str:
        """The address put in Contact, Via and SDP."""
        return self.advertised_host or self.bind_host

    def resolved_secret(self) -> str:
        """The SIP password (read from ``secret_env`` now, when given that way); ``ConfigError`` when missing."""
        if self.secret_env is None:
            if self.secret is None:
                raise ConfigError("[live] secret: the tap needs its SIP password ('secret' or 'secret_env')")
            return self.secret
        value = os.environ.get(self.secret_env)
        if value is None:
            raise ConfigError(f"[live] secret_env: the environment variable {self.secret_env} is not set")
        try:
            return _secret(value)
        except ValueError:
            raise ConfigError(f"[live] secret_env: the environment variable {self.secret_env} must hold one line, "
                              "not empty") from None

    def problems(self) -> list[str]:
        """What keeps the tap from starting, one ``live.key: problem`` line each (none when it is off)."""
        if not self.enabled:
            return []
        found: list[str] = []
        try:
            self.resolved_secret()
        except ConfigError as exc:
            found.append(str(exc).replace("[live] ", "live."))
        from importlib.util import find_spec

        if find_spec("pyVoIP") is None:
            found.append("live.enabled: the tap needs pyVoIP: pip install 'cti-companion[live]' (GPL-3.0, see README)")
        return found


def _wildcard(host: str) -> bool:
    return host in ("0.0.0.0", "::", "")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
