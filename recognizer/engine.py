"""What every recogniser does: a call's audio in, its words with times and speakers out.

Engines run in worker processes (``recognizer/pool.py``), never on the daemon's event loop: :meth:`Engine.transcribe`
is synchronous and may take seconds per call. An engine is built once per worker process and model
(:func:`open_engine`) and reused for every job of that model, since loading a model costs seconds and hundreds of MB.

Vosk (``recognizer/vosk_engine.py``) is the default and the only engine for live audio; faster-whisper
(``recognizer/whisper_engine.py``, the ``whisper`` extra) is the optional second one. Both give the same
:class:`cti.transcripts.Transcript`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cti.transcripts import EngineName, Speaker, Transcript


class RecognizerError(Exception):
    """A job cannot be done; ``str()`` is the reason stored with the failed job, in words an admin can act on."""


class AudioError(RecognizerError):
    """The recording is missing, empty, truncated or in a format we cannot decode."""


class ModelError(RecognizerError):
    """The model folder is missing, partial or corrupt (a clear message, never the library's crash)."""


@dataclass(frozen=True, slots=True)
class Lane:
    """One speaker's audio (or both sides mixed, ``speaker="unknown"``): 16-bit signed little-endian mono PCM at
    ``rate`` Hz, exactly as it plays in the recording (word times are seconds into it)."""

    speaker: Speaker
    pcm: bytes
    rate: int

    @property
    def duration(self) -> float:
        return len(self.pcm) / 2 / self.rate if self.rate else 0.0


@dataclass(frozen=True, slots=True)
class CallAudio:
    """A call's decoded recording: one lane per side (stereo or split files), or one mixed lane (mono)."""

    lanes: tuple[Lane, ...]

    @property
    def duration(self) -> float:
        return max((lane.duration for lane in self.lanes), default=0.0)


class Engine(Protocol):
    """A loaded model that transcribes calls."""

    name: EngineName
    #: The model's folder name, stored with each transcript.
    model: str

    def transcribe(self, audio: CallAudio) -> Transcript:
        """Every lane's words, with the lane's speaker (``unknown`` for a mixed lane), in time order. Raises
        ``RecognizerError`` for what cannot be done."""
        ...
