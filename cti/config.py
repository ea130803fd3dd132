"""The daemon's configuration: one TOML file, validated by pydantic before anything starts.

A bad file never produces a traceback or a half-started daemon: :func:`load_config` raises
:class:`ConfigError`, whose text names the file, the field and what is wrong, and the CLI prints it and
exits with status 2.

Strings the daemon puts into AMI actions (the AMI login, the ``[pbx]`` channel technology, contexts, agents'
names and queue names) are :data:`AmiText`: one line of text, refused at load time if they hold a control
character. AMI ends a header at LF and an action at an empty line, so a CR or LF in such a setting would
otherwise add headers of its own to every action it goes into (and the serialisation would refuse each of those
actions at run time, one by one); an ESC or another control character is no part of any name Asterisk knows.
"""

from __future__ import annotations

import os
import re
import ssl
import tomllib
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    ValidationError,
    field_validator,
    model_validator,
)


class ConfigError(Exception):
    """The configuration cannot be used; the message is meant for the person who wrote it."""


#: What a string sent in an AMI action may not hold: C0 controls (CR, LF and NUL end a header or the action),
#: DEL, C1 controls (U+0085 ends a line too), the Unicode line and paragraph separators, lone surrogates.
_NOT_AMI_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_CONTROL_NAMES = {"\x00": "NUL", "\t": "TAB", "\n": "LF", "\r": "CR", "\x1b": "ESC", "\x85": "NEL"}


def ami_text_problem(value: str) -> str | None:
    """What makes ``value`` unfit for an AMI action, in words that name the character, or None if it is fine."""
    found = _NOT_AMI_TEXT.search(value)
    if found is None:
        return None
    char = found.group()
    code = f"U+{ord(char):04X}"
    if "\ud800" <= char <= "\udfff":
        return (f"holds {code} at character {found.start() + 1}, which is not text (a byte that is not UTF-8?): "
                "it is sent to the PBX in AMI actions")
    name = f"{_CONTROL_NAMES[char]}, {code}" if char in _CONTROL_NAMES else code
    return (f"holds a control character ({name}) at character {found.start() + 1}: it is sent to the PBX in AMI "
            "actions, which take one line of text")


def _ami_text(value: str) -> str:
    problem = ami_text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


#: A setting that goes into AMI actions: one line of text, no control characters (see the module's docstring).
AmiText = Annotated[str, AfterValidator(_ami_text)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AmiSettings(_Section):
    """Where the PBX's AMI is and how to talk to it."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 5038
    username: AmiText = "cti"
    secret: AmiText | None = None
    secret_env: str | None = Field(default=None, description="Read the secret from this environment variable")
    #: Event classes asked for at login (``Events:``): ``call`` carries channels, dials, bridges and
    #: transfers; ``agent`` the queue events; ``dialplan`` the recording file name and voicemail.
    events: AmiText = "call,agent,dialplan"
    #: Send AMI ``Filter`` actions so that only the events the daemon reads cross the wire
    #: (one call makes hundreds of VarSet/Newexten events). The action needs the ``system`` write class;
    #: the least-privilege user (``cti ami-user``) has the same filters in manager.conf instead: set False.
    use_filters: bool = True
    ping_interval: Annotated[float, Field(gt=0)] = 10.0
    ping_timeout: Annotated[float, Field(gt=0)] = 5.0
    action_timeout: Annotated[float, Field(gt=0)] = 10.0
    connect_timeout: Annotated[float, Field(gt=0)] = 5.0
    reconnect_min: Annotated[float, Field(gt=0)] = 0.5
    reconnect_max: Annotated[float, Field(gt=0)] = 30.0
    max_frame_size: Annotated[int, Field(ge=1024)] = 64 * 1024

    @model_validator(mode="after")
    def _secret_given(self) -> AmiSettings:
        if self.secret is None and self.secret_env is None:
            raise ValueError("give either 'secret' or 'secret_env' (the name of an environment variable)")
        return self

    def resolved_secret(self) -> str:
        if self.secret_env is not None:
            value = os.environ.get(self.secret_env)
            if value is None:
                raise ConfigError(f"[ami] secret_env: the environment variable {self.secret_env} is not set")
            problem = ami_text_problem(value)
            if problem is not None:  # the file's own values were checked at load; this one only now
                raise ConfigError(f"[ami] secret_env: the environment variable {self.secret_env} {problem}")
            return value
        assert self.secret is not None
        return self.secret


class StoreSettings(_Section):
    path: Path = Path("cti.sqlite")
    #: Staged writes are flushed at least this often (seconds) and at least every ``batch_size`` rows.
    flush_interval: Annotated[float, Field(gt=0)] = 0.2
    batch_size: Annotated[int, Field(ge=1)] = 500
    #: Above this many unwritten items the daemon stops reading from the PBX until they are committed.
    max_pending: Annotated[int, Field(ge=100)] = 5_000


class PbxSettings(_Section):
    """Dial-plan facts the call model needs: which endpoints are trunks, which are agents."""

    #: PJSIP/SIP/IAX endpoint names of the trunks (``PJSIP/trunk-0000000c`` is endpoint ``trunk``).
    trunks: list[str] = ["trunk"]
    #: A regular expression an agent's extension (and endpoint name) matches in full.
    agent_pattern: str = r"[1-9]\d{2,3}"
    #: Agents' names, for display only; an extension matching ``agent_pattern`` is an agent anyway.
    agents: dict[AmiText, AmiText] = {}
    #: Queue names, for display and checks; any queue Asterisk reports is tracked.
    queues: list[AmiText] = []
    #: A caller who hangs up within this many seconds of the first ring is a ``short_abandon``.
    short_abandon_seconds: Annotated[float, Field(ge=0)] = 3.0
    #: Dialplan applications that count as voicemail for the missed-call register.
    voicemail_apps: list[str] = ["VoiceMail"]
    #: Time zone for printed times (IANA name); empty = the machine's local zone.
    timezone: str = ""
    #: Region for reading national phone numbers (ISO 3166 code).
    default_region: str = "RU"
    #: Channel technology of the agents' phones: click-to-call rings ``PJSIP/101`` first.
    agent_technology: AmiText = "PJSIP"
    #: Dialplan context click-to-call dials the customer's number in (as if the agent's phone dialled it).
    originate_context: AmiText = "from-internal"
    #: Seconds the agent's phone rings for a click-to-call before the PBX gives up.
    originate_timeout: Annotated[float, Field(gt=0, le=300)] = 20.0
    #: Dialplan context of transfer targets that are extensions or ring groups (``Redirect``/``Atxfer``).
    transfer_context: AmiText = "transfer"
    #: Dialplan context for transferring to an external number (anything longer than an extension).
    external_transfer_context: AmiText = "outbound"
    #: Numbers up to this many digits are internal (extensions, ring groups); longer ones are external.
    internal_number_max_digits: Annotated[int, Field(ge=1, le=10)] = 4

    @field_validator("agent_pattern")
    @classmethod
    def _valid_regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, value: str) -> str:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Moscow)") from None
        return value

    def tzinfo(self) -> ZoneInfo | None:
        return ZoneInfo(self.timezone) if self.timezone else None


class HttpSettings(_Section):
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

    @model_validator(mode="after")
    def _tls_pair(self) -> HttpSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("give both tls_cert and tls_key, or neither")
        return self


class DirectorySettings(_Section):
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

    @field_validator("crm_url")
    @classmethod
    def _has_placeholder(cls, value: str) -> str:
        if value and "{number}" not in value:
            raise ValueError("put {number} where the caller's number goes")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("an http:// or https:// URL")
        return value


class Settings(_Section):
    ami: AmiSettings = AmiSettings(secret_env="CTI_AMI_SECRET")
    store: StoreSettings = StoreSettings()
    pbx: PbxSettings = PbxSettings()
    http: HttpSettings = HttpSettings()
    directory: DirectorySettings = DirectorySettings()


def _describe(exc: ValidationError, path: Path) -> str:
    lines = [f"{path}: invalid configuration"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown setting (check the spelling; see config.example.toml)"
        lines.append(f"  {where}: {msg}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any], path: Path = Path("<config>")) -> Settings:
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    # Relative paths are relative to the config file, not to wherever the daemon started.
    base = path.parent if path.name != "<config>" else Path.cwd()
    if not settings.store.path.is_absolute():
        settings = settings.model_copy(
            update={"store": settings.store.model_copy(update={"path": (base / settings.store.path).resolve()})}
        )
    tls = {key: (base / value).resolve() for key in ("tls_cert", "tls_key")
           if isinstance(value := getattr(settings.http, key), Path) and not value.is_absolute()}
    if tls:
        settings = settings.model_copy(update={"http": settings.http.model_copy(update=tls)})
    return settings


def file_problems(settings: Settings) -> list[str]:
    """What is wrong with the files the configuration names, one ``section.key: problem`` line each.

    Not part of loading: ``cti calls`` on a copy of the config elsewhere needs neither the store's folder
    nor the certificate. ``cti check-config`` reports these, and ``cti run`` refuses to start with any.
    """
    problems: list[str] = []
    store = settings.store.path
    if not store.parent.is_dir():
        problems.append(f"store.path: the folder {store.parent} does not exist")
    elif store.is_dir():
        problems.append(f"store.path: {store} is a folder, not a file")
    http = settings.http
    if http.enabled and http.tls_cert is not None and http.tls_key is not None:
        missing = [f"http.{key}: {value}: no such file" for key, value in (("tls_cert", http.tls_cert),
                                                                          ("tls_key", http.tls_key))
                   if not value.is_file()]
        problems.extend(missing)
        if not missing:
            problem = _tls_problem(http.tls_cert, http.tls_key)
            if problem is not None:
                problems.append(f"http.tls_cert, tls_key: {problem}")
    return problems


def _tls_problem(cert: Path, key: Path) -> str | None:
    """Why the pair cannot serve HTTPS, or None; loaded as the panel will load it (without a passphrase)."""

    def no_passphrase() -> bytes:
        raise ValueError("the key is encrypted")

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key, password=no_passphrase)
    except ssl.SSLError as exc:
        detail = f" ({exc.reason.lower().replace('_', ' ')})" if exc.reason else ""
        return f"not a usable TLS certificate and private key in PEM form{detail}"
    except OSError as exc:
        return f"cannot read the TLS certificate or key: {exc.strerror}"
    except ValueError as exc:
        return f"cannot use the TLS key: {exc} (the panel has no passphrase setting)"
    return None


def load_config(path: str | os.PathLike[str]) -> Settings:
    """Read and validate a TOML config file. Raises ConfigError with a human explanation."""
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file (copy config.example.toml and edit it)") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return parse_config(data, p)
