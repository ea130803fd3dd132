"""The ``[http]`` (panel, API, WebSocket), ``[directory]`` (caller card), ``[supervisor]`` (the supervisor's
figures), ``[alerts]`` (the supervisor's alerts) and ``[qa]`` (the QA page's checklist) sections of the configuration
file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, IPvAnyNetwork, field_validator, model_validator

from asterisk.settings import Section
from cti.qa import MAX_ITEM_POINTS, Checklist, ChecklistItem

from .numbers import NumberStyle


class HttpSettings(Section):
    """The web panel, the REST API and the WebSocket endpoint (one port)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    #: PEM files for HTTPS/WSS; both or neither. Without them the panel is plain HTTP (keep it on a LAN).
    #: A relative path is relative to the config file (like ``[store] path``); ``cti check-config`` and
    #: ``cti run`` check that they load as a certificate and its unencrypted key.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: Origins allowed to open the WebSocket besides the panel's own (``https://crm.example.ru``).
    allowed_origins: list[str] = []
    #: A login stays valid this long without use (hours). Sessions are kept in the store (a restart keeps
    #: them; ``cti users remove/passwd`` end them at once). A use is an HTTP request or a WebSocket command
    #: other than the panel's keep-alive ping; an open socket closes when its session expires.
    session_hours: Annotated[float, Field(gt=0)] = 12.0
    #: Failed logins for one user name from one address: this many are checked freely within
    #: ``login_window_seconds``; then one try at a time, each waiting 1, 2, 4 ... s (at most the window) after
    #: the last failure (HTTP 429 with Retry-After). Other addresses are not affected. One address has a budget
    #: of four times this many failures over all names, refilled over the window. Counted in memory, per daemon.
    login_max_failures: Annotated[int, Field(ge=1)] = 5
    login_window_seconds: Annotated[float, Field(gt=0)] = 300.0
    #: Outgoing messages waiting for one client; a client this far behind is disconnected (close code 1013).
    client_queue_size: Annotated[int, Field(ge=8)] = 256
    #: Largest message a client may send (bytes); larger ones get an error reply.
    max_message_bytes: Annotated[int, Field(ge=256)] = 16 * 1024
    #: Recent journal rows an agent's panel shows.
    recent_calls: Annotated[int, Field(ge=1, le=500)] = 20
    #: Reverse proxies (addresses or networks, e.g. ``127.0.0.1``, ``10.0.0.0/24``) whose
    #: ``X-Forwarded-For`` names the real client. Requests from anywhere else are taken at their TCP address.
    trusted_proxies: list[IPvAnyNetwork] = []
    #: Host names the panel answers to besides IP literals, ``localhost`` and this machine's own names
    #: (a request naming another host is refused: DNS rebinding). Behind a proxy: the public name.
    allowed_hosts: list[str] = []
    #: Request bodies larger than this are refused (413) before they are read.
    max_body_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024
    #: A client has this long to send a whole request, headers and (bounded) body, before the connection is
    #: closed (seconds); the clock starts when the connection opens and again at each next request's first byte.
    header_timeout: Annotated[float, Field(gt=0)] = 10.0
    #: Open connections the panel accepts in all, and from one address (a trusted proxy is exempt).
    max_connections: Annotated[int, Field(ge=1)] = 4000
    max_connections_per_address: Annotated[int, Field(ge=1)] = 200
    #: Call-control commands per user: a burst of this many, then ``command_rate`` per second.
    command_burst: Annotated[int, Field(ge=1)] = 10
    command_rate: Annotated[float, Field(gt=0)] = 2.0
    #: WebSockets one login session (or one API token) may hold open at once.
    max_sockets_per_session: Annotated[int, Field(ge=1)] = 16
    #: The bearer token Prometheus sends to read ``GET /metrics`` (``Authorization: Bearer <token>``), from any
    #: address; at least 16 printable ASCII characters (``openssl rand -hex 32``). Empty: ``/metrics`` answers
    #: only direct requests from this machine (a loopback peer, not relayed by a proxy). See docs/deploy.md.
    metrics_token: str = ""
    #: The panel's language for a browser whose user has not picked one with the RU / EN switch: "ru", "en", or
    #: "auto" (English for a browser that prefers English, else Russian). docs/panel.md#languages.
    language: Literal["auto", "ru", "en"] = "auto"

    @field_validator("metrics_token")
    @classmethod
    def _token_shape(cls, value: str) -> str:
        if value and not (16 <= len(value) <= 256 and all("!" <= c <= "~" for c in value)):
            raise ValueError("16 to 256 printable ASCII characters, no spaces (e.g. `openssl rand -hex 32`), "
                             "or empty")
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> HttpSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("give both tls_cert and tls_key, or neither")
        return self


class DirectorySettings(Section):
    """The caller card: the local directory, and optionally the CRM asked over HTTP."""

    #: A caller who called (or was attached to a call) within this many days is a "repeat" contact.
    repeat_days: Annotated[float, Field(gt=0)] = 180.0
    #: How many of the caller's last calls the card lists.
    last_calls: Annotated[int, Field(ge=0, le=50)] = 5
    #: The CRM's lookup URL with ``{number}`` where the caller's number goes (e.g. a 1C HTTP service:
    #: ``http://1c.local/base/hs/cti/caller?number={number}``); empty: the local directory only.
    crm_url: str = ""
    #: The pop never waits longer than this for the CRM; then it goes out with the local card (seconds).
    crm_timeout: Annotated[float, Field(gt=0, le=10)] = 0.5
    #: A CRM answer is reused for this long (seconds); failures are not cached.
    crm_cache_seconds: Annotated[float, Field(ge=0)] = 300.0
    #: How the panel shows phone numbers (``ui_bridge/numbers.py``): ``international`` (+7 916 123-45-67) or
    #: ``national`` (8 (916) 123-45-67 for the numbers of ``[pbx] default_region``). Stored and matched as given.
    number_style: NumberStyle = "international"

    @field_validator("crm_url")
    @classmethod
    def _has_placeholder(cls, value: str) -> str:
        if value and "{number}" not in value:
            raise ValueError("put {number} where the caller's number goes")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("an http:// or https:// URL")
        return value


class SupervisorSettings(Section):
    """The supervisor's live figures, the wallboard and the alerts computed from them."""

    #: The service level counts the queue callers answered within this many seconds of their arrival
    #: (``cti/service_level.py``): the wallboard's figure and the service-level alert's.
    service_level_seconds: Annotated[float, Field(gt=0, le=3600)] = 20.0


class AlertSettings(Section):
    """``[alerts]``: when the supervisor's panel raises an alert (with a sound); each kind is off at 0, as when
    absent. ``docs/panel.md`` (Alerts) says what each one means."""

    #: A caller waiting in a queue longer than this (seconds, from the call's arrival at the PBX).
    long_wait_seconds: Annotated[float, Field(ge=0, le=86400)] = 0.0
    #: A queue's service level (``[supervisor] service_level_seconds``) under this percentage, over the queue calls
    #: that ended in the last ``service_level_window_minutes``...
    service_level_below: Annotated[float, Field(ge=0, le=100)] = 0.0
    service_level_window_minutes: Annotated[float, Field(gt=0, le=1440)] = 30.0
    #: ... counted over at least this many calls (short abandons do not count): at opening time one lost call
    #: alone in the window is a service level of 0 %, and no alarm.
    service_level_min_calls: Annotated[int, Field(ge=1, le=100_000)] = 10
    #: An agent paused (and not on a call) longer than this (minutes).
    paused_minutes: Annotated[float, Field(ge=0, le=1440)] = 0.0
    #: A missed call still open in the register this long after it was missed (minutes).
    missed_not_called_back_minutes: Annotated[float, Field(ge=0, le=10080)] = 0.0


class RegisterSettings(Section):
    """``[register]``: the missed-call register a team shares (``ui_bridge/register.py``)."""

    #: A supervisor's claim on a number ("calling back, taken by Anna") ends by itself after this many minutes,
    #: if no call-back reached the customer and its holder neither released it nor recorded a result.
    claim_minutes: Annotated[float, Field(gt=0, le=1440)] = 10.0


class ReminderSettings(Section):
    """``[reminders]``: the call-back reminders a script's reminder step makes (``ui_bridge/reminders.py``)."""

    #: A reminder still open this many minutes after its time is escalated to the admins (their panel lists it
    #: among the overdue reminders), whether or not its employee ever logged in.
    escalate_after_minutes: Annotated[float, Field(gt=0, le=10080)] = 30.0


class ScriptEmployee(Section):
    """One person of a ``[scripts.employees]`` list: a master, the parts desk (``docs/contact-script.md``)."""

    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    #: Where a transfer to them rings; without one they can get reminders, not transfers.
    extension: Annotated[str | None, Field(pattern=r"^[0-9]{1,10}$")] = None


class ScriptSettings(Section):
    """``[scripts]``: the inbound-contact scripts an agent follows beside the caller card (``docs/contact-script.md``).

    Without ``folder`` there are no scripts (the panel shows none). Every ``*.toml`` of the folder is loaded at start;
    a file with an error stops the daemon (``cti check-config`` prints every problem, with its file, line and step).
    """

    #: The folder of the script files (relative: to the config file). ``cti demo`` uses the shipped
    #: ``examples/scripts``; a site points it at its own copy.
    folder: Path | None = None
    #: The script (its ``name``) launched when an agent answers an inbound call; empty: the folder's only script.
    default: str = ""
    #: Another script for the calls of a queue, or of a DID (the number dialled): ``{ support = "car-service" }``.
    queues: dict[str, str] = {}
    dids: dict[str, str] = {}
    #: Launch the default script by itself when an agent answers an inbound call (false: only by hand).
    auto_start: bool = True
    #: A transfer the script asked for counts as not answered when the target's phone has not answered within this
    #: many seconds (then the script goes on to its reminder).
    transfer_timeout: Annotated[float, Field(gt=0, le=600)] = 30.0
    #: The employee lists a script takes from the configuration (``masters = [{ id, name, extension }]``): they
    #: replace the script's list of the same name, so a site's own people need no edit (and no new version) of the
    #: script.
    employees: dict[str, list[ScriptEmployee]] = {}


class QaChecklistItem(Section):
    """One ``[[qa.checklist]]`` item: ``key = "greeting"``, ``title = "Поздоровался и представился"``, ``points = 1``
    (1: yes/no; N: 0..N points), ``weight = 1`` (how many times it counts in the call's score)."""

    key: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_\-]*$")]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    points: Annotated[int, Field(ge=1, le=MAX_ITEM_POINTS)] = 1
    weight: Annotated[float, Field(gt=0, le=1000)] = 1.0


#: The checklist a centre gets without a ``[qa]`` section: a car service's calls (docs/transcription.md).
DEFAULT_CHECKLIST = [
    QaChecklistItem(key="greeting", title="Поздоровался и представился"),
    QaChecklistItem(key="identified", title="Узнал имя клиента и его автомобиль"),
    QaChecklistItem(key="booking", title="Предложил запись на сервис", points=2, weight=2),
    QaChecklistItem(key="goodbye", title="Попрощался"),
]


class QaSettings(Section):
    """``[qa]``: the checklist QA scores calls against on the QA page (``cti/qa.py``: the points of a filled form)."""

    #: What a score records as its checklist: give the checklist another name when its items change, and the
    #: per-agent report keeps the old scores apart from the new.
    checklist_name: Annotated[str, Field(min_length=1, max_length=64)] = "car-service"
    checklist: Annotated[list[QaChecklistItem], Field(min_length=1, max_length=50)] = DEFAULT_CHECKLIST

    @model_validator(mode="after")
    def _one_checklist(self) -> QaSettings:
        self.checklist_of()  # ValueError naming the item: a key twice
        return self

    def checklist_of(self) -> Checklist:
        return Checklist(self.checklist_name, tuple(ChecklistItem(i.key, i.title, i.points, i.weight)
                                                    for i in self.checklist))
