"""Settings of the PBX link: the ``[ami]`` and ``[pbx]`` sections of the configuration file.

Each package owns the pydantic model of its own section (``store.settings``, ``ui_bridge.settings``); the
composition root (``companion.config``) puts them together and reads the file. These two live beneath every
other package because the AMI client, the call model's configuration and the panel's call control all read them.

Strings the daemon puts into AMI actions (the AMI login, the ``[pbx]`` channel technology, contexts, agents'
names and queue names) are :data:`AmiText`: one line of text, refused at load time if they hold a control
character. AMI ends a header at LF and an action at an empty line, so a CR or LF in such a setting would
otherwise add headers of its own to every action it goes into (and the serialisation would refuse each of those
actions at run time, one by one); an ESC or another control character is no part of any name Asterisk knows.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator


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


class Section(BaseModel):
    """One section of the configuration file: unknown keys are refused, values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AmiSettings(Section):
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
    #: The back-off's cap. Low on purpose: the daemon tries again at least this often while the PBX is away, so it
    #: notices the PBX's return (and the panel's "no link to the PBX" banner goes) within a few seconds. A PBX that
    #: refuses us, or accepts the login and drops us at once, still gets one attempt per this many seconds at most.
    reconnect_max: Annotated[float, Field(gt=0)] = 5.0
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


#: A PBX's short id: what the journal, the register and the panel tell PBXs apart by (``msk``, ``spb-2``).
PBX_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,15}")
#: The id of a PBX whose section names none (a single-PBX site): ``cti.records.DEFAULT_PBX``, the PBX every row
#: of a store older than PBX ids belongs to (tests/layout checks the two are the same).
DEFAULT_PBX_ID = "main"


def _pbx_id(value: str) -> str:
    if not PBX_ID.fullmatch(value):
        raise ValueError("a PBX id is 1-16 characters: lower-case Latin letters, digits, '-' and '_', starting "
                         "with a letter or a digit (e.g. 'msk', 'spb-2')")
    return value


PbxId = Annotated[str, AfterValidator(_pbx_id)]


class PbxSettings(Section):
    """Dial-plan facts the call model needs: which endpoints are trunks, which are agents."""

    #: The PBX's short id, stored with each of its calls (it can never change once calls are journaled).
    id: PbxId = DEFAULT_PBX_ID
    #: Its name for people (the panel's PBX column and filter); empty: the id.
    name: str = ""

    #: PJSIP/SIP/IAX endpoint names of the trunks (``PJSIP/trunk-0000000c`` is endpoint ``trunk``).
    trunks: list[str] = ["trunk"]
    #: A regular expression an agent's extension (and endpoint name) matches in full.
    agent_pattern: str = r"[1-9]\d{2,3}"
    #: Agents' names, for display only; an extension matching ``agent_pattern`` is an agent anyway.
    agents: dict[AmiText, AmiText] = {}
    #: Queue names, for display and checks; any queue Asterisk reports is tracked.
    queues: list[AmiText] = []
    #: A caller who hangs up within this many seconds of the call's arrival at the PBX (not of the first
    #: ring: a queue caller who waited 15 s is not one) is a ``short_abandon`` (docs/missed-calls.md).
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




class FollowedPbx(PbxSettings):
    """One entry of ``[[pbxs]]``: a PBX's dial-plan facts (the keys of ``[pbx]``) and its own ``[pbxs.ami]``."""

    id: PbxId  # required here: each PBX of a list names itself
    ami: AmiSettings

    @property
    def label(self) -> str:
        return self.name or self.id


def followed_pbxs(ami: AmiSettings, pbx: PbxSettings, pbxs: Sequence[FollowedPbx]) -> list[FollowedPbx]:
    """The PBXs a daemon follows: the ``[[pbxs]]`` list, or the single ``[ami]`` + ``[pbx]`` pair as one entry."""
    if pbxs:
        return list(pbxs)
    return [FollowedPbx(**pbx.model_dump(), ami=ami)]
