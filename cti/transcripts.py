"""A call's transcript and the jobs that make it: plain values shared by the recogniser, the store and the panel.

The recogniser (``recognizer/``, in worker processes) turns a call's recordings into a :class:`Transcript`; the
store keeps the transcription queue (:class:`TranscriptionJob`) and the words; the QA page and the search read
them back. Nothing here does I/O: these are the values those edges pass each other (issue 14).

Times are seconds from the start of the call's recording (a word at 12.3 s plays 12.3 s into the audio file), so a
click on a word seeks the player there; epoch times (``queued_at`` …) are the daemon's clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: Who said a word: the agent, the customer, or ``unknown`` where the recording mixes both sides and the speakers
#: could not be told apart (a mono file without a usable speaker model).
Speaker = Literal["agent", "customer", "unknown"]
SPEAKERS: tuple[Speaker, ...] = ("agent", "customer", "unknown")

#: What one audio file holds: ``stereo`` two channels (which one is the agent: :attr:`AudioSource.left`), ``mono``
#: both sides mixed (the speakers are told apart by their voices), ``agent``/``customer`` one side only (MixMonitor's
#: ``r()``/``t()`` split files).
AudioLayout = Literal["stereo", "mono", "agent", "customer"]

#: A recogniser: ``vosk`` (the default, and the only one for live audio) or ``whisper`` (faster-whisper, an extra).
EngineName = Literal["vosk", "whisper"]

JobState = Literal["queued", "running", "done", "failed"]


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word: its text as the engine wrote it, where it plays in the recording, how sure it is."""

    speaker: Speaker
    text: str
    start: float
    end: float
    #: 0..1 (Vosk's ``conf``; Whisper's word probability).
    conf: float


@dataclass(frozen=True, slots=True)
class Transcript:
    """Everything said in one call, both sides, in time order (ties: agent first)."""

    words: tuple[Word, ...]
    engine: EngineName
    #: The model's folder name (``vosk-model-small-ru-0.22``), as ``cti models list`` names it.
    model: str
    #: The audio's length in seconds (the longest of the call's files).
    duration: float
    language: str | None = None

    def text(self, speaker: Speaker | None = None) -> str:
        """The words of one side (or all), joined by spaces: what search and keyword matching read."""
        return " ".join(w.text for w in self.words if speaker is None or w.speaker == speaker)


@dataclass(frozen=True, slots=True)
class AudioSource:
    """One file of a call's recording: its name as the PBX wrote it (a name, never a path from a client: the daemon
    joins it to ``[recording] dir``) and what it holds."""

    name: str
    layout: AudioLayout
    #: For ``stereo``: who is on the left channel (the other side is on the right).
    left: Speaker = "agent"


@dataclass(frozen=True, slots=True)
class EngineChoice:
    """Which recogniser and model transcribe a call (``[transcription]``: per queue or DID, else the default)."""

    engine: EngineName = "vosk"
    #: A model folder name under ``[transcription] models_dir``, or an absolute path.
    model: str = ""
    language: str | None = None


@dataclass(frozen=True, slots=True)
class NewJob:
    """A call to transcribe, as the daemon (on a call's end) or ``cti transcribe --since`` queues it."""

    pbx: str
    linkedid: str
    sources: tuple[AudioSource, ...]
    choice: EngineChoice
    #: When the call started (epoch seconds): ``--since`` and the queue's order read it.
    call_started_at: float


@dataclass(frozen=True, slots=True)
class TranscriptionJob:
    """A queued, running, done or failed transcription, as the store keeps it.

    A job is taken with a lease (``worker``, ``lease_until``): a daemon killed mid-job leaves it ``running`` with a
    lease that runs out, and the next taker (the restarted daemon) runs it again, counting the attempt. A job that
    used up ``[transcription] max_attempts`` is ``failed`` with the reason of its last try.
    """

    id: int
    pbx: str
    linkedid: str
    sources: tuple[AudioSource, ...]
    choice: EngineChoice
    call_started_at: float
    state: JobState
    attempts: int
    queued_at: float
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None
    lease_until: float | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class TranscriptQuery:
    """A search of every call's words (the QA page's search box and ``GET /api/transcripts/search``)."""

    #: Words to find (each stemmed, all required); empty: every transcribed call matching the filters.
    text: str = ""
    since: float | None = None
    until: float | None = None
    agent: str | None = None
    #: A number as typed (normalised like the journal's search).
    number: str | None = None
    queue: str | None = None
    speaker: Speaker | None = None
    #: Only calls flagged by this keyword list (``[transcription.keywords]`` names); ``"*"``: any flag.
    flag: str | None = None
    pbxs: tuple[str, ...] | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class TranscriptHit:
    """A call the search found, and where in it: the player opens it at ``at_second``."""

    pbx: str
    linkedid: str
    call_started_at: float
    caller: str | None
    answered_by: str | None
    queue: str | None
    speaker: Speaker | None
    #: The first matching word's start (0 when only the filters matched).
    at_second: float
    #: A few words around the match, as plain text (the panel escapes it).
    snippet: str
    flags: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class AudioDeletion:
    """One recording file the retention deleted (the call's transcript stays)."""

    pbx: str
    linkedid: str
    name: str
    at: float
    reason: str
