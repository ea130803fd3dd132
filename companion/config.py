"""The daemon's configuration: one TOML file, validated by pydantic before anything starts.

A bad file never produces a traceback or a half-started daemon: :func:`load_config` raises
:class:`ConfigError`, whose text names the file, the field and what is wrong, and the CLI prints it and
exits with status 2.

Each package owns the model of its own section (``asterisk.settings``: ``[ami]`` and ``[pbx]``;
``store.settings``; ``ui_bridge.settings``: ``[http]`` and ``[directory]``); this module, in the composition
root, puts them together, reads the file and checks the files it names.
"""

from __future__ import annotations

import os
import ssl
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, model_validator

from asterisk.recording_files import RecordingSettings
from asterisk.settings import (
    AmiSettings,
    AmiText,
    ConfigError,
    FollowedPbx,
    PbxId,
    PbxSettings,
    Section,
    ami_text_problem,
    followed_pbxs,
)
from recognizer.settings import TranscriptionSettings
from store.settings import StoreSettings
from ui_bridge.complaint_settings import ComplaintSettings, template_problems
from ui_bridge.crm_settings import CrmSettings
from ui_bridge.live_settings import LiveSettings
from ui_bridge.mail_settings import MailSettings
from ui_bridge.settings import (
    AlertSettings,
    DirectorySettings,
    HttpSettings,
    QaSettings,
    RegisterSettings,
    ReminderSettings,
    ScriptSettings,
    SupervisorSettings,
)

__all__ = ["AmiSettings", "AmiText", "ConfigError", "DirectorySettings", "FollowedPbx", "HttpSettings", "PbxSettings",
           "Settings",
           "StoreSettings", "ami_text_problem", "file_problems", "load_config", "parse_config"]


class ClusterSettings(Section):
    """``[cluster]``: what this process does among several on one PostgreSQL store (``docs/deploy.md``).

    Every PBX of the configuration is followed by exactly one process at a time (it holds the PBX's lease in the
    store); the others stand by and take over within ``lease_retry`` seconds of the holder's death.
    """

    #: The PBX ids this process may follow; absent: every PBX of the file; ``[]``: none (a panel-only node).
    follow: tuple[PbxId, ...] | None = None
    #: Seconds between tries to take over a PBX another process follows: the longest wait after it dies.
    lease_retry: Annotated[float, Field(gt=0, le=60)] = 1.0


class Settings(Section):
    """The whole file: one section per package that reads its own.

    One PBX is ``[ami]`` + ``[pbx]``; several are a ``[[pbxs]]`` list, each entry with its id, its dial-plan
    facts and its ``[pbxs.ami]`` (then ``pbx``/``ami`` here are the first entry's: what the CLI prints times
    and reads numbers with). :meth:`followed` is the list either way.
    """

    ami: AmiSettings = AmiSettings(secret_env="CTI_AMI_SECRET")
    store: StoreSettings = StoreSettings()
    pbx: PbxSettings = PbxSettings()
    pbxs: tuple[FollowedPbx, ...] = ()
    http: HttpSettings = HttpSettings()
    directory: DirectorySettings = DirectorySettings()
    supervisor: SupervisorSettings = SupervisorSettings()
    alerts: AlertSettings = AlertSettings()
    #: ``[register]`` (the name ``register`` would hide the model class's own ``register``, from ``ABCMeta``).
    missed_register: RegisterSettings = Field(default=RegisterSettings(), alias="register")
    cluster: ClusterSettings = ClusterSettings()
    #: ``[scripts]``: the inbound-contact scripts (``ui_bridge/script_library.py``).
    scripts: ScriptSettings = ScriptSettings()
    #: ``[reminders]``: the call-back reminders (``ui_bridge/reminders.py``).
    reminders: ReminderSettings = ReminderSettings()
    #: ``[qa]``: the checklist calls are scored against on the QA page (``cti/qa.py``, ``docs/transcription.md``).
    qa: QaSettings = QaSettings()
    #: ``[recording]``: which calls the daemon records, where the files are, how long they stay
    #: (``asterisk/recording_files.py``, ``docs/recording.md``).
    recording: RecordingSettings = RecordingSettings()
    #: ``[transcription]``: the recogniser's queue, workers, models, keyword lists (``recognizer/settings.py``,
    #: ``docs/transcription.md``).
    transcription: TranscriptionSettings = TranscriptionSettings()
    #: ``[complaints]``: types, lists, managers, deadlines, attachments, e-mail templates
    #: (``ui_bridge/complaint_settings.py``, ``docs/complaints.md``).
    complaints: ComplaintSettings = ComplaintSettings()
    #: ``[mail]``: the SMTP server the e-mail outbox is sent through (``ui_bridge/mail_settings.py``,
    #: ``companion/mailer.py``, ``docs/complaints.md``); no host: mails wait in the outbox.
    mail: MailSettings = MailSettings()
    #: ``[crm]``: the CRMs calls are pushed into (``ui_bridge/crm_settings.py``, ``companion/crm/``,
    #: ``docs/crm.md``); no sub-section: no push.
    crm: CrmSettings = CrmSettings()
    #: ``[live]``: the SIP audio tap calls in progress are streamed to (``ui_bridge/live_settings.py``,
    #: ``companion/live/``); off unless ``enabled``.
    live: LiveSettings = LiveSettings()

    @model_validator(mode="after")
    def _followed_pbxs_exist(self) -> Settings:
        known = [pbx.id for pbx in self.followed()]
        unknown = [pbx for pbx in self.cluster.follow or () if pbx not in known]
        if unknown:
            raise ValueError(f"[cluster] follow: no PBX {', '.join(map(repr, unknown))} in this file (its PBXs: "
                             f"{', '.join(known)})")
        return self

    @model_validator(mode="after")
    def _one_way_to_name_pbxs(self) -> Settings:
        if not self.pbxs:
            return self
        both = sorted({"ami", "pbx"} & self.model_fields_set)
        if both:
            raise ValueError(f"give either [[pbxs]] or [{'] and ['.join(both)}], not both (with several PBXs each "
                             "entry of [[pbxs]] has its own dial-plan keys and its [pbxs.ami])")
        seen: set[str] = set()
        for entry in self.pbxs:
            if entry.id in seen:
                raise ValueError(f"two PBXs with the id {entry.id!r}: each PBX of [[pbxs]] needs its own id")
            seen.add(entry.id)
        first = self.pbxs[0]
        # Frozen sections: the first entry stands for the site where one value is needed (times, numbers).
        object.__setattr__(self, "pbx", PbxSettings(**first.model_dump(exclude={"ami"})))
        object.__setattr__(self, "ami", first.ami)
        return self

    def followed(self) -> list[FollowedPbx]:
        """Every PBX of the configuration, each with its own AMI connection settings."""
        return followed_pbxs(self.ami, self.pbx, self.pbxs)

    def pbx_named(self, pbx_id: str) -> FollowedPbx | None:
        return next((p for p in self.followed() if p.id == pbx_id), None)


def _describe(exc: ValidationError, path: Path) -> str:
    lines = [f"{path}: invalid configuration"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")  # pydantic's prefix of a validator's own words
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
    speech = {key: (base / value).resolve() for key in ("models_dir", "speaker_model")
              if isinstance(value := getattr(settings.transcription, key), Path) and not value.is_absolute()}
    if speech:
        settings = settings.model_copy(update={"transcription": settings.transcription.model_copy(update=speech)})
    complaint_folders = {key: (base / value).resolve() for key in ("attachments_folder", "templates_folder")
                         if isinstance(value := getattr(settings.complaints, key), Path) and not value.is_absolute()}
    if complaint_folders:
        settings = settings.model_copy(
            update={"complaints": settings.complaints.model_copy(update=complaint_folders)})
    if settings.mail.ca_file is not None and not settings.mail.ca_file.is_absolute():
        settings = settings.model_copy(
            update={"mail": settings.mail.model_copy(update={"ca_file": (base / settings.mail.ca_file).resolve()})})
    if settings.scripts.folder is not None and not settings.scripts.folder.is_absolute():
        folder = (base / settings.scripts.folder).resolve()
        settings = settings.model_copy(update={"scripts": settings.scripts.model_copy(update={"folder": folder})})
    return settings


def file_problems(settings: Settings) -> list[str]:
    """What is wrong with the files the configuration names, one ``section.key: problem`` line each.

    Not part of loading: ``cti calls`` on a copy of the config elsewhere needs neither the store's folder
    nor the certificate. ``cti check-config`` reports these, and ``cti run`` refuses to start with any.
    """
    problems: list[str] = []
    store = settings.store.path
    if settings.store.url:
        pass  # a PostgreSQL store: no file (reaching the database is checked when it is opened)
    elif not store.parent.is_dir():
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
    from ui_bridge.script_library import folder_problems  # reads the scripts only when asked (not for a listing)

    problems.extend(folder_problems(settings.scripts))  # every problem of every script file, with file and step
    if settings.complaints.templates_folder is not None:  # the site's edited e-mail templates, each file read
        problems.extend(template_problems(settings.complaints.templates_folder))
    problems.extend(settings.mail.problems())  # the CA file, and the password's environment variable
    problems.extend(settings.crm.problems())  # each CRM's secret, in the file or in the environment
    problems.extend(settings.live.problems())  # the tap's SIP secret, and pyVoIP (the optional `live` extra)
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
