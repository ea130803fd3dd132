"""Recording policy: which answered calls the daemon records, the MixMonitor it asks for, and which file holds whom.

Pure rules (no I/O, no clock), in three parts:

* **On answer** (:func:`wants_recording`): a call the dialplan already records is adopted as it is (its
  ``MIXMONITOR_FILENAME`` names the file, the journal lists it); any other answered call is recorded by the daemon
  when ``[recording] record`` says so: ``all``, ``inbound`` (from a trunk), ``selected`` (through one of the listed
  queues or on one of the listed DIDs), never by default.
* **What to ask for** (:func:`mixmonitor_request`): a file name made from the PBX's id and the call's linkedid (safe
  characters only: it goes into an AMI header and a file system) and MixMonitor's options for the layout: ``split``
  writes the mix and each direction apart (``r(<base>-in.wav)t(<base>-out.wav)``, as the lab's split route of
  34-stereo-recording), ``stereo`` one two-channel file (``D``), ``mix`` one mono file. The daemon runs MixMonitor on
  the customer's channel (:func:`customer_channel`), so ``-in`` (what that channel sends) is the customer and
  ``-out`` (what it hears) the agent, and a stereo file's left channel is the customer.
* **After the call** (:func:`sources_of`): which of a finished call's files hold which side, for the recogniser.
  Split ``-in``/``-out`` files are one side each (the side of the channel MixMonitor ran on: the customer's for the
  daemon's own files, ``[recording] dialplan_side`` for the dialplan's), and the mix beside them is left out (it holds
  the same words, mixed); a ``-stereo.wav`` file is stereo; any other file is a mono mix. A call recorded twice (a
  transfer to an outside number starts a second MixMonitor: 35-blind-transfer-external) keeps both files.

The journal lists a file under the name the PBX gave it (``CallRecord.recordings``). The daemon's split mix
(``cti-<pbx>-<linkedid>-mix.wav``) is the only one whose ``-in``/``-out`` files the PBX never names in an event
(MixMonitor started by an action has no ``Newexten``), so :func:`files_of` adds them from the name.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal, Protocol

from .effects import CallContext, ChannelView
from .records import CallRecord
from .transcripts import AudioSource

#: The prefix of every file the daemon names: what tells its own recordings from the dialplan's.
DAEMON_PREFIX = "cti-"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_DAEMON_SPLIT_MIX = re.compile(r"^(cti-[A-Za-z0-9._-]+)-mix\.wav$")
_SPLIT = re.compile(r"^(.+)-(in|out)(\.[A-Za-z0-9]+)$")
_STEREO = re.compile(r"-stereo\.[A-Za-z0-9]+$")
#: A side of the call (what a split file holds).
Side = Literal["agent", "customer"]


class RecordingRules(Protocol):
    """What the rules read of ``[recording]`` (``asterisk.recording_files.RecordingSettings`` is one)."""

    @property
    def record(self) -> str: ...
    @property
    def queues(self) -> Collection[str]: ...
    @property
    def dids(self) -> Collection[str]: ...
    @property
    def layout(self) -> str: ...
    @property
    def dialplan_side(self) -> str: ...


@dataclass(frozen=True, slots=True)
class MixMonitorRequest:
    """The AMI ``MixMonitor`` the daemon sends for a call: on ``channel``, into ``file``, with ``options``."""

    channel: str
    file: str
    options: str
    #: Every file it makes (the mix or the stereo file first): what the journal will list.
    files: tuple[str, ...]


def wants_recording(context: CallContext, rules: RecordingRules, recorded: bool) -> bool:
    """Whether the daemon starts a recording of this answered call.

    ``recorded``: the call already has a recording (the journal knows one, or the PBX says a channel of the call
    has ``MIXMONITOR_FILENAME``): the dialplan's is adopted and nothing more is started.
    """
    if recorded or (context.answered_at is None and context.answered_by is None):
        return False
    match rules.record:
        case "all":
            return True
        case "inbound":
            return context.direction == "inbound"
        case "selected":
            return (context.queue is not None and context.queue in rules.queues) or (
                context.direction == "inbound" and context.called is not None and context.called in rules.dids)
        case _:
            return False


def customer_channel(context: CallContext) -> ChannelView | None:
    """The live channel the daemon records on: the outside party's (a trunk's, the oldest); on an internal call,
    the caller's (the call's first channel). None when neither is there any more."""
    # The caller's channel may not be up yet when the agent's answer is seen (11-ringgroup-answered): MixMonitor
    # records on it all the same, as the dialplan does on a ringing channel.
    trunk = next((c for c in context.channels if c.kind == "trunk"), None)  # oldest first: the customer's
    if trunk is not None:
        return trunk
    return next((c for c in context.channels if c.uniqueid == context.origin), None)


def recording_base(pbx: str, linkedid: str) -> str:
    """The daemon's file name stem for a call: ``cti-<pbx>-<linkedid>``, every character outside ``A-Za-z0-9._-``
    replaced by ``_`` (a linkedid comes from the PBX; the name goes into an AMI header and the file system)."""
    return _UNSAFE.sub("_", f"{DAEMON_PREFIX}{pbx}-{linkedid}")


def mixmonitor_request(context: CallContext, layout: str) -> MixMonitorRequest | None:
    """The ``MixMonitor`` action's values for an answered call (None: no channel of it to record on).

    Option ``b``: only while the channel is bridged (no ringing or music before the agent is there).
    """
    channel = customer_channel(context)
    if channel is None:
        return None
    base = recording_base(context.pbx, context.linkedid)
    if layout == "split":
        mix, sides = f"{base}-mix.wav", (f"{base}-in.wav", f"{base}-out.wav")
        return MixMonitorRequest(channel.name, mix, f"br({sides[0]})t({sides[1]})", (mix, *sides))
    if layout == "stereo":
        name = f"{base}-stereo.wav"
        return MixMonitorRequest(channel.name, name, "bD", (name,))
    name = f"{base}.wav"
    return MixMonitorRequest(channel.name, name, "b", (name,))


def files_of(record: CallRecord) -> tuple[str, ...]:
    """Every recording file of a finished call: the journal's, and the ``-in``/``-out`` files the daemon's split
    mix implies (their names never reach the journal: see the module's docstring)."""
    out: list[str] = []
    for name in record.recordings:
        if name not in out:
            out.append(name)
        found = _DAEMON_SPLIT_MIX.match(name)
        if found is not None:
            out.extend(f for f in (f"{found[1]}-in.wav", f"{found[1]}-out.wav") if f not in out)
    return tuple(out)


def _other(side: Side) -> Side:
    return "agent" if side == "customer" else "customer"


def sources_of(record: CallRecord, rules: RecordingRules) -> tuple[AudioSource, ...]:
    """Which file of a finished call holds which side (see the module's docstring), in the journal's order."""
    names = files_of(record)
    dialplan: Side = "agent" if rules.dialplan_side == "agent" else "customer"
    split_bases = {m[1] + m[3] for n in names if (m := _SPLIT.match(n)) is not None}
    out: list[AudioSource] = []
    for name in names:
        recorded: Side = "customer" if name.startswith(DAEMON_PREFIX) else dialplan
        split = _SPLIT.match(name)
        if split is not None:
            out.append(AudioSource(name, recorded if split[2] == "in" else _other(recorded)))
            continue
        ours = _DAEMON_SPLIT_MIX.match(name)
        if name in split_bases or (ours is not None and f"{ours[1]}.wav" in split_bases):
            continue  # the mix beside its split files: the same words, mixed
        if _STEREO.search(name):
            out.append(AudioSource(name, "stereo", left=recorded))
        else:
            out.append(AudioSource(name, "mono"))
    return tuple(out)
