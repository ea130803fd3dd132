"""Where a lane holds speech: the stretches the recogniser is fed, so it spends no CPU on silence.

In a stereo or split recording each side is silent while the other talks (and before answer, on hold, after the
goodbye): half of each lane or more. Decoding silence costs Vosk as much as decoding speech, so the engine feeds only
the stretches found here, each at its offset, and word times stay seconds into the recording.

The detector is energy-based, per 20 ms frame, with a threshold set from the lane itself, not a fixed level:

* the **noise floor** is a low percentile of the frames' energies (line hiss, comfort noise, digital zero), the
  **speech level** a high one;
* a frame is speech when it is well above the floor: ``floor + clamp(25% of (speech - floor), 6 dB, 15 dB)``. A
  quiet side (a customer on a bad mobile line at -40 dBFS) is still well above its own floor, and a noisy line
  (hiss at -50 dBFS) does not make every frame speech;
* a lane whose loudest frames are no louder than :data:`SILENT_DBFS` holds no speech at all (the idle side of a
  split recording, Asterisk's digital silence);
* a lane with no quiet frames to learn a floor from (speech from end to end, or steady noise) is fed whole: when in
  doubt the recogniser decides, never the detector;
* each stretch is padded by :data:`PAD` on both sides (Vosk needs the lead-in, and a word's soft ending must not be
  cut), and stretches closer than :data:`MERGE_GAP` are joined (a pause between two sentences of one turn is cheaper
  to decode than to cut, and cutting there could split a word); so are a short lead-in and tail to the lane's ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: Analysis frame, seconds.
FRAME = 0.02
#: Padding kept around each speech stretch, seconds.
PAD = 0.3
#: Stretches closer than this (after padding) are joined, seconds.
MERGE_GAP = 0.6
#: A lane whose loudest frames stay below this level (dBFS) holds no speech.
SILENT_DBFS = -55.0
#: The level given to a frame of digital zero (log of 0), dBFS.
FLOOR_DBFS = -96.0
#: Percentiles read as the noise floor and the speech level.
FLOOR_PERCENTILE = 10.0
SPEECH_PERCENTILE = 95.0
#: Less than this between floor and speech level, dB: the lane cannot be told apart, fed whole.
MIN_CONTRAST_DB = 6.0


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of a lane, in samples from the lane's start (``end`` exclusive)."""

    start: int
    end: int

    def seconds(self, rate: int) -> tuple[float, float]:
        return self.start / rate, self.end / rate


def frame_levels(pcm: bytes, rate: int, frame: float = FRAME) -> npt.NDArray[np.float64]:
    """Each whole frame's RMS level in dBFS (16-bit full scale = 0 dBFS); a trailing partial frame counts too."""
    samples = np.frombuffer(pcm, dtype="<i2", count=len(pcm) // 2).astype(np.float64)
    size = max(1, int(rate * frame))
    count = -(-len(samples) // size)
    if count == 0:
        return np.zeros(0)
    padded = np.zeros(count * size)
    padded[: len(samples)] = samples
    frames = padded.reshape(count, size)
    # The last frame's mean over its real samples only.
    lengths = np.full(count, size, dtype=np.float64)
    lengths[-1] = len(samples) - (count - 1) * size
    rms = np.sqrt((frames * frames).sum(axis=1) / lengths)
    with np.errstate(divide="ignore"):
        levels = 20.0 * np.log10(rms / 32768.0)
    floored: npt.NDArray[np.float64] = np.maximum(levels, FLOOR_DBFS)
    return floored


def speech_spans(pcm: bytes, rate: int) -> tuple[Span, ...]:
    """The stretches of one lane (16-bit mono PCM at ``rate``) worth recognising, in order, not overlapping.

    Empty when the lane holds no speech; the whole lane when it cannot be told apart (see the module's docstring).
    """
    total = len(pcm) // 2
    if total == 0 or rate <= 0:
        return ()
    levels = frame_levels(pcm, rate)
    speech_level = float(np.percentile(levels, SPEECH_PERCENTILE))
    if float(levels.max()) <= SILENT_DBFS:
        return ()
    floor = float(np.percentile(levels, FLOOR_PERCENTILE))
    contrast = speech_level - floor
    if contrast < MIN_CONTRAST_DB:
        return (Span(0, total),)
    threshold = floor + min(max(0.25 * contrast, 6.0), 15.0)
    voiced = levels > threshold
    frame_len = max(1, int(rate * FRAME))
    pad = int(PAD * rate)
    gap = int(MERGE_GAP * rate)
    spans: list[Span] = []
    # Runs of voiced frames: where the 0/1 sequence steps up (start) and down (end).
    edges = np.diff(np.concatenate(([0], voiced.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    for first, last in zip(starts.tolist(), ends.tolist(), strict=True):
        start = max(0, first * frame_len - pad)
        end = min(total, last * frame_len + pad)
        if spans and start - spans[-1].end <= gap:
            spans[-1] = Span(spans[-1].start, end)
        else:
            spans.append(Span(start, end))
    # The same rule at the lane's ends: a short lead-in or tail is fed rather than cut (it saves nothing, and a
    # recording fed from its first sample decodes exactly as a bare Vosk run over the file does).
    if spans and spans[0].start <= gap:
        spans[0] = Span(0, spans[0].end)
    if spans and total - spans[-1].end <= gap:
        spans[-1] = Span(spans[-1].start, total)
    return tuple(spans)
