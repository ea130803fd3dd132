"""Live call audio (issue 17): the values the SIP tap, the live recogniser and the panel pass each other, pure.

A call in progress is tapped through the PBX (``ChanSpy`` to the daemon's own SIP endpoint, ``companion/live/``):
its audio arrives as :class:`AudioFrame` s per *lane* (the agent's voice, the customer's, or both mixed where the
spy cannot keep them apart), is fed to a recogniser in a worker process (``recognizer/live.py``), whose
:class:`LiveResult` s (partial: may still change; final: settled) reach the panel as ``call.transcript.partial`` /
``call.transcript.final`` and are kept with the call, so QA reads the same words after.

Times are seconds from the start of the tap (the moment the PBX began sending the call's audio), on the audio's own
clock (RTP timestamps), so a word's time does not drift with the network; the daemon's clock only says when the tap
began (``TapInfo.started_at``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .transcripts import Speaker

#: Whose voice a lane carries: one side, or both mixed (then the words are ``unknown``'s).
Lane = Literal["agent", "customer", "mixed"]

#: The rate every lane is decoded to (G.711 is 8 kHz).
LIVE_RATE = 8000


def speaker_of(lane: Lane) -> Speaker:
    """Who said a lane's words: its side, or ``unknown`` for a mixed lane."""
    return "unknown" if lane == "mixed" else lane


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """A stretch of one lane's audio, decoded: 16-bit signed little-endian PCM, mono, :data:`LIVE_RATE`.

    ``start`` is where it plays (seconds from the tap's start, by the RTP clock). A stretch the network lost, or a
    jump of the RTP timestamp, comes as silence of bounded length with ``filled`` True: a lane never stalls for lack
    of packets, and never grows without bound on a jump.
    """

    lane: Lane
    pcm: bytes
    start: float
    filled: bool = False

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / LIVE_RATE


@dataclass(frozen=True, slots=True)
class LiveWord:
    text: str
    start: float
    end: float
    conf: float


@dataclass(frozen=True, slots=True)
class LiveResult:
    """What the recogniser made of a lane so far: a *partial* (the words of the utterance in progress, replaced by
    the next one) or a *final* (an utterance settled, never changed again)."""

    lane: Lane
    final: bool
    text: str
    words: tuple[LiveWord, ...]
    #: Where the utterance starts and ends in the tap (seconds).
    start: float
    end: float

    @property
    def speaker(self) -> Speaker:
        return speaker_of(self.lane)


@dataclass(frozen=True, slots=True)
class TapInfo:
    """One tap of a call: which call, which lane, when it began (daemon's clock, epoch seconds)."""

    pbx: str
    linkedid: str
    lane: Lane
    started_at: float
    #: The id the daemon gave the tap (it names the SIP call the PBX makes to the daemon's endpoint).
    tap_id: str
