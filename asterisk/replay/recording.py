"""The replay PBX's answer to an AMI ``MixMonitor``: what Asterisk 22 sends, and real audio files to go with it.

Asterisk answers ``Action: MixMonitor`` on a channel it has with ``Response: Success`` and, as the recording starts,
sets ``MIXMONITOR_FILENAME`` on that channel (a ``VarSet`` event, the file's full path: a relative ``File`` is put
in the spool folder ``/var/spool/asterisk/monitor``) and sends ``MixMonitorStart``; on a channel it does not have,
``Response: Error``, ``Message: No such channel``; with no ``Channel``, ``No channel specified``. A recorded trace
cannot hold those events for an action nobody sent when it was recorded, so the replay makes them (the daemon's own
recordings: ``companion/recorder.py``).

Given a folder, it also writes the files there (the file's name, without the PBX's folder): a copy of a real
recording of the traces (the mix of 34-stereo-recording with its ``-in``/``-out`` halves when those are at hand),
as the mix, as ``r()``'s and ``t()``'s files, or interleaved as a two-channel file for option ``D``. So the demo and
the tests have audio, and a transcript, for the calls the daemon records.
"""

from __future__ import annotations

import re
import shutil
import wave
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from asterisk.messages import AmiMessage

from .actions import arg
from .state import SNAPSHOT_KEYS, PbxState

#: Where Asterisk puts a ``MixMonitor`` file named without a folder (``astspooldir``/monitor).
MONITOR_DIR = "/var/spool/asterisk/monitor"
_SPLIT = re.compile(r"([rt])\(([^)]*)\)")
_HEADER_ONLY = 44  # an armed-but-never-bridged recording: a WAV header and no audio


@dataclass(frozen=True, slots=True)
class MixMonitorAnswer:
    """The ``Response`` to a ``MixMonitor`` and the events that follow it."""

    ok: bool
    message: str
    events: list[AmiMessage] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SampleAudio:
    """The audio the replay writes: a mix and, if known, what each direction of it alone sounds like."""

    mix: Path
    incoming: Path | None = None
    outgoing: Path | None = None


def find_sample(folders: Iterable[Path]) -> SampleAudio | None:
    """A real recording among the trace folders' ``recordings/``: a mix with its split halves if there is one,
    else any WAV with audio in it (not a 44-byte empty one). None: no audio at hand (the files are then silence)."""
    plain: Path | None = None
    for folder in folders:
        recordings = folder / "recordings"
        if not recordings.is_dir():
            continue
        for file in sorted(recordings.glob("*.wav")):
            if file.stem.endswith(("-in", "-out")) or file.stat().st_size <= _HEADER_ONLY:
                continue
            incoming, outgoing = file.with_name(f"{file.stem}-in.wav"), file.with_name(f"{file.stem}-out.wav")
            if incoming.is_file() and outgoing.is_file():
                return SampleAudio(file, incoming, outgoing)
            plain = plain or file
    return SampleAudio(plain) if plain is not None else None


class ReplayRecorder:
    """Answers ``MixMonitor`` from the PBX's state; writes the files into ``folder`` when one is given."""

    def __init__(self, state: PbxState, folder: Path | None = None, sample: SampleAudio | None = None) -> None:
        self.state = state
        self.folder = folder
        self.sample = sample
        #: Every file written, in order (tests read it).
        self.written: list[Path] = []
        self._t = 0.0

    def act(self, msg: AmiMessage, now: float) -> MixMonitorAnswer:
        channel = arg(msg, "Channel")
        if not channel:
            return MixMonitorAnswer(False, "No channel specified")
        fields = next((c.fields for c in self.state.channels.values() if c.fields.get("Channel") == channel), None)
        if fields is None:
            return MixMonitorAnswer(False, "No such channel")
        file = arg(msg, "File") or f"{channel.replace('/', '-')}.wav"
        options = arg(msg, "Options")
        path = _full_path(file)
        snapshot = [(key, fields.get(key, "")) for key in SNAPSHOT_KEYS]
        events = [
            self._event("VarSet", now, *snapshot, ("Variable", "MIXMONITOR_FILENAME"), ("Value", path),
                        privilege="dialplan,all"),
            self._event("MixMonitorStart", now, *snapshot),
        ]
        if self.folder is not None:
            self._write(path, options)
        return MixMonitorAnswer(True, "", events)

    def _event(self, name: str, now: float, *pairs: tuple[str, str], privilege: str = "call,all") -> AmiMessage:
        self._t = max(self._t + 0.000010, now)
        return AmiMessage(headers=[("Event", name), ("Privilege", privilege), ("Timestamp", f"{self._t:.6f}"),
                                   *pairs])

    def _write(self, path: str, options: str) -> None:
        sample = self.sample
        split = {which: _full_path(name) for which, name in _SPLIT.findall(options) if name}
        stereo = "D" in _SPLIT.sub("", options)
        if stereo:
            self._stereo(path, sample)
        else:
            self._copy(path, sample.mix if sample else None)
        for which, name in split.items():
            half = (sample.incoming if which == "r" else sample.outgoing) if sample else None
            self._copy(name, half or (sample.mix if sample else None))

    def _target(self, path: str) -> Path:
        """Where a file goes: its name in the folder (the PBX's own folder is not ours to write)."""
        folder = self.folder
        assert folder is not None
        folder.mkdir(parents=True, exist_ok=True)
        name = PurePosixPath(path).name
        return folder / (name if name not in ("", ".", "..") else "recording.wav")

    def _copy(self, path: str, source: Path | None) -> None:
        target = self._target(path)
        if source is not None:
            shutil.copyfile(source, target)
        else:
            _silence(target, channels=1)
        self.written.append(target)

    def _stereo(self, path: str, sample: SampleAudio | None) -> None:
        """Option ``D``: the channel's incoming audio on the left, the outgoing on the right, interleaved."""
        target = self._target(path)
        if sample is None:
            _silence(target, channels=2)
        else:
            left = _frames(sample.incoming or sample.mix)
            right = _frames(sample.outgoing or sample.mix)
            size = max(len(left), len(right))
            left, right = left.ljust(size, b"\0"), right.ljust(size, b"\0")
            both = b"".join(left[i:i + 2] + right[i:i + 2] for i in range(0, size, 2))
            with wave.open(str(target), "wb") as out:
                out.setnchannels(2)
                out.setsampwidth(2)
                out.setframerate(8000)
                out.writeframes(both)
        self.written.append(target)


def _full_path(file: str) -> str:
    return file if file.startswith("/") else f"{MONITOR_DIR}/{file}"


def _frames(path: Path) -> bytes:
    """A mono 16-bit WAV's samples (the lab's recordings are 8 kHz 16-bit mono)."""
    with wave.open(str(path), "rb") as audio:
        return audio.readframes(audio.getnframes())


def _silence(target: Path, channels: int, seconds: float = 1.0) -> None:
    with wave.open(str(target), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0" * (2 * channels * int(8000 * seconds)))
