"""The speech set's stereo calls cut into a tap's frames, for the live recogniser's tests and ``bench/live.py``.

A tap hands the recogniser 20 ms frames (one RTP packet of G.711 each) per lane, their ``start`` on the RTP clock;
``call_02_en.wav`` (left = agent, right = customer, each side silent while the other talks) played that way is the
closest thing to a tapped call this machine has.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cti.live import LIVE_RATE, AudioFrame, Lane
from tests.speech import SpeechCall, speech_calls

#: One RTP packet of G.711: 20 ms.
FRAME_SECONDS = 0.02


@dataclass(frozen=True, slots=True)
class TappedCall:
    """A stereo call's two lanes as 16-bit PCM, and its utterances' bounds per lane."""

    call: SpeechCall
    lanes: dict[Lane, bytes]

    def frames(self, lane: Lane, *, until: float | None = None, offset: float = 0.0) -> list[AudioFrame]:
        """The lane as 20 ms frames (up to ``until`` seconds), each ``start`` shifted by ``offset``."""
        pcm = self.lanes[lane]
        step = int(LIVE_RATE * FRAME_SECONDS) * 2
        end = len(pcm) if until is None else min(len(pcm), int(until * LIVE_RATE) * 2)
        return [AudioFrame(lane, pcm[i:min(i + step, end)], offset + i / 2 / LIVE_RATE) for i in range(0, end, step)]

    def spans(self, lane: Lane) -> list[tuple[float, float]]:
        """Where the lane's utterances lie (the placed clips' bounds: about 0.3 s of silence each end)."""
        return [(u.start, u.end) for u in self.call.utterances if u.channel == lane]


def tapped_call(name: str = "call_02_en.wav") -> TappedCall:
    call = next(c for c in speech_calls() if c.path.name == name)
    return TappedCall(call, read_stereo(call.path, call.channels))


def read_stereo(path: Path, channels: dict[str, str]) -> dict[Lane, bytes]:
    with wave.open(str(path), "rb") as wav:
        assert wav.getframerate() == LIVE_RATE and wav.getnchannels() == 2 and wav.getsampwidth() == 2
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    left: Lane = "agent" if channels["left"] == "agent" else "customer"
    right: Lane = "customer" if left == "agent" else "agent"
    return {left: samples[:, 0].copy().tobytes(), right: samples[:, 1].copy().tobytes()}
