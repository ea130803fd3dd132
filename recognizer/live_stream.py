"""One live lane decoded as it plays: audio in, partials and finals out (runs inside a live worker process).

:class:`LaneDecoder` is what ``recognizer/live.py``'s worker keeps per tapped lane: a Vosk ``KaldiRecognizer`` that
lives as long as the lane, fed in :data:`CHUNK_SECONDS` pieces. It is synchronous and has no I/O, so it is tested
and benchmarked in-process as well as in the worker.

Why a gate of our own in front of Vosk (:class:`SpeechGate`):

* **Finals on time.** Vosk ends an utterance by its model's endpoint rules (``conf/model.conf``: 0.5 s of trailing
  silence when the decoder is confident, 1.0 s or 2.0 s when it is not). On the speech set's calls the last turn of a
  lane is only closed after 2 s, or never when the audio stops. The issue's bound is 1.5 s from a word being sent to
  its final, so the lane's own level decides: :data:`END_SILENCE` seconds under the speech threshold end the
  utterance (``FinalResult()``), whatever Vosk's rules say. Vosk's own endpoint still gives a final earlier when it
  fires first.
* **No CPU on silence.** In a tapped call each side is silent while the other talks, and Vosk spends CPU on silence
  too. Once an utterance has ended, silence is not fed; the next speech is fed with :data:`PREROLL` seconds of the
  audio before it (Vosk needs the lead-in, and a word's soft start must not be cut), as ``recognizer/silence.py``
  does after the call.

The threshold is learned from the lane itself, as ``recognizer/silence.py`` learns it (a quiet customer on a bad
mobile line is still well above their own line's floor): a frame is speech when it is louder than the lane's noise
floor (a low percentile of the last :data:`FLOOR_WINDOW` seconds) by :data:`MARGIN_DB`, and louder than
:data:`recognizer.silence.SILENT_DBFS`. Until a floor is known everything above that absolute level is fed: when in
doubt the recogniser decides, never the gate.

**Times.** Vosk counts word times from the first sample a recogniser was given; a lane whose silence is skipped, or
whose audio has a gap (frames the parent dropped to catch up, a tap's jump), feeds Vosk a clock that is not the tap's.
The decoder keeps where each contiguous run of fed audio starts on both clocks (:class:`_Clock`) and maps every
word's time back to the tap's (``AudioFrame.start``: the RTP clock). A gap in the middle of an utterance ends it first:
words are never stitched across missing audio.

**Falling behind.** ``behind=True`` (the worker has more of this lane's audio waiting than it can decode in time)
thins the partials to one per :data:`BEHIND_PARTIAL_SECONDS` of an utterance's decoded audio instead of one per
piece: a partial costs Vosk a traceback of its lattice and is out of date before it is read, but a worker starved of
CPU (a loaded machine) would otherwise show nothing of a long utterance until its final; the reader still sees the
words grow, late. Finals are never skipped.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from cti.live import LIVE_RATE, Lane, LiveResult, LiveWord
from recognizer.engine import RecognizerError
from recognizer.silence import FLOOR_DBFS, FLOOR_PERCENTILE, SILENT_DBFS

#: Seconds of audio per ``AcceptWaveform`` (and between two partials): the grain of a partial's latency.
CHUNK_SECONDS = 0.1
#: The gate's analysis frame, seconds (as ``recognizer/silence.py``).
FRAME_SECONDS = 0.02
#: Silence that ends an utterance, seconds (the final follows at once).
END_SILENCE = 0.5
#: A lane that is behind gets a partial once per this many seconds of an utterance's decoded audio (else one per chunk).
BEHIND_PARTIAL_SECONDS = 1.0
#: Audio fed before the first speech frame of an utterance, seconds.
PREROLL = 0.3
#: The noise floor is learned over this much of the lane's recent audio, seconds.
FLOOR_WINDOW = 10.0
#: Frames needed before the floor is trusted (1 s); before that only :data:`SILENT_DBFS` decides.
FLOOR_MIN_FRAMES = 50
#: A frame is speech when this many dB above the floor.
MARGIN_DB = 9.0
#: A frame starting further than this from where the previous one ended is a gap (seconds): half a sample's slack.
GAP_TOLERANCE = 0.5 / LIVE_RATE

_FRAME = int(LIVE_RATE * FRAME_SECONDS)
_CHUNK_BYTES = int(LIVE_RATE * CHUNK_SECONDS) * 2


class Recogniser(Protocol):
    """The part of ``vosk.KaldiRecognizer`` a lane uses (its method names are Vosk's)."""

    def AcceptWaveform(self, data: bytes) -> int: ...
    def PartialResult(self) -> str: ...
    def Result(self) -> str: ...
    def FinalResult(self) -> str: ...


class SpeechGate:
    """Per 20 ms frame of one lane: speech or not, against a noise floor learned from the lane's recent audio."""

    def __init__(self) -> None:
        self._levels: deque[float] = deque(maxlen=int(FLOOR_WINDOW / FRAME_SECONDS))
        self._since_floor = 0
        self.threshold = SILENT_DBFS

    def is_speech(self, frame: bytes) -> bool:
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float64)
        rms = float(np.sqrt(np.mean(samples * samples))) if samples.size else 0.0
        level = max(20.0 * np.log10(rms / 32768.0), FLOOR_DBFS) if rms > 0 else FLOOR_DBFS
        self._levels.append(level)
        self._since_floor += 1
        if len(self._levels) >= FLOOR_MIN_FRAMES and self._since_floor >= 10:  # a percentile every 0.2 s is plenty
            self._since_floor = 0
            floor = float(np.percentile(np.fromiter(self._levels, dtype=np.float64), FLOOR_PERCENTILE))
            self.threshold = max(SILENT_DBFS, floor + MARGIN_DB)
        return level > self.threshold


class _Clock:
    """Where each contiguous run of fed audio starts, in Vosk's samples and on the tap's clock."""

    def __init__(self) -> None:
        self._fed: list[int] = []
        self._tap: list[float] = []

    def mark(self, fed: int, tap: float) -> None:
        if self._fed and self._fed[-1] == fed:
            self._tap[-1] = tap
            return
        self._fed.append(fed)
        self._tap.append(tap)

    def tap_time(self, vosk_seconds: float) -> float:
        sample = vosk_seconds * LIVE_RATE
        i = max(0, bisect_right(self._fed, sample) - 1)
        if not self._fed:
            return vosk_seconds
        return self._tap[i] + (sample - self._fed[i]) / LIVE_RATE

    def forget_before(self, fed: int) -> None:
        """Runs that end before ``fed`` samples (a settled utterance's) are not needed any more."""
        keep = max(0, bisect_right(self._fed, fed) - 1)
        del self._fed[:keep], self._tap[:keep]


class LaneDecoder:
    """One lane's recogniser, gate and clock (see the module's docstring).

    Args:
        lane: whose voice (the results carry it).
        recogniser: a fresh ``KaldiRecognizer`` at :data:`cti.live.LIVE_RATE` with word times on (``SetWords`` and
            ``SetPartialWords``), or anything that speaks :class:`Recogniser`.
    """

    def __init__(self, lane: Lane, recogniser: Recogniser) -> None:
        self.lane = lane
        self._rec = recogniser
        self._gate = SpeechGate()
        self._clock = _Clock()
        #: Samples given to the recogniser so far (Vosk's clock).
        self._fed = 0
        #: Where the next frame is expected on the tap's clock (None: nothing seen yet).
        self._next: float | None = None
        #: Audio not analysed yet (less than a gate frame), with the tap time of its first sample.
        self._tail = b""
        self._tail_start = 0.0
        #: Silence kept while idle (the next utterance's lead-in): (tap start, pcm) per gate frame.
        self._preroll: deque[tuple[float, bytes]] = deque(maxlen=max(1, round(PREROLL / FRAME_SECONDS)))
        #: Audio gated in and waiting for a whole chunk, and the tap time where it starts.
        self._pending = bytearray()
        self._pending_start = 0.0
        self._speaking = False
        self._silent_run = 0.0
        self._last_partial = ""
        #: :attr:`decoded` when the last partial was computed (or the last utterance settled).
        self._partial_at = 0.0
        #: Seconds of audio taken in (the worker reports it: the parent's measure of the lane's lag).
        self.taken = 0.0
        #: Seconds of audio actually decoded by Vosk (the gate saved the rest).
        self.decoded = 0.0
        self.partials_skipped = 0

    def feed(self, pcm: bytes, start: float, *, behind: bool = False) -> list[LiveResult]:
        """Take the lane's next audio (``start``: its place on the tap's clock); return what it settled or grew.

        ``behind``: more audio of this lane is already waiting; partials are thinned (finals never are skipped).
        """
        out: list[LiveResult] = []
        if len(pcm) % 2:
            pcm = pcm[:-1]
        if self._next is not None and abs(start - self._next) > GAP_TOLERANCE:
            # A jump (audio missing, or repeated): the utterance in progress ends before it, the tail is dropped.
            self._end_utterance(out)
            self._tail = b""
            self._preroll.clear()
        if not self._tail:
            self._tail_start = start
        self._next = start + len(pcm) / 2 / LIVE_RATE
        self.taken += len(pcm) / 2 / LIVE_RATE
        data = self._tail + pcm
        whole = len(data) // (_FRAME * 2) * (_FRAME * 2)
        for offset in range(0, whole, _FRAME * 2):
            self._frame(data[offset:offset + _FRAME * 2], self._tail_start + offset / 2 / LIVE_RATE, out, behind)
        self._tail_start += whole / 2 / LIVE_RATE
        self._tail = data[whole:]
        return out

    def finish(self) -> list[LiveResult]:
        """The lane is over: whatever was said last, settled."""
        out: list[LiveResult] = []
        if self._tail and self._speaking:
            self._take(self._tail, self._tail_start, out)
        self._tail = b""
        self._end_utterance(out)
        return out

    def _frame(self, frame: bytes, at: float, out: list[LiveResult], behind: bool) -> None:
        speech = self._gate.is_speech(frame)
        if not self._speaking:
            if not speech:
                self._preroll.append((at, frame))
                return
            self._speaking = True
            for pre_at, pre in self._preroll:
                self._take(pre, pre_at, out)
            self._preroll.clear()
        self._silent_run = 0.0 if speech else self._silent_run + FRAME_SECONDS
        self._take(frame, at, out)
        if len(self._pending) >= _CHUNK_BYTES:
            self._decode(out, behind)
        if self._silent_run >= END_SILENCE - 1e-9:
            self._end_utterance(out)

    def _take(self, frame: bytes, at: float, out: list[LiveResult]) -> None:
        """Queue a gated-in frame for Vosk, marking the clock where a new contiguous run begins."""
        if not self._pending:
            self._pending_start = at
        expected = self._pending_start + len(self._pending) / 2 / LIVE_RATE
        if self._pending and abs(at - expected) > GAP_TOLERANCE:
            # not contiguous with what waits (a lead-in is the audio right before; kept for safety): flush first
            self._accept(out)
            self._pending_start = at
        self._pending += frame

    def _accept(self, out: list[LiveResult]) -> bool:
        """Give the waiting audio to Vosk; True when Vosk ended an utterance by its own rules."""
        if not self._pending:
            return False
        self._clock.mark(self._fed, self._pending_start)
        chunk = bytes(self._pending)
        self._pending.clear()
        self._fed += len(chunk) // 2
        self.decoded += len(chunk) / 2 / LIVE_RATE
        try:
            ended = bool(self._rec.AcceptWaveform(chunk))
        except Exception as e:  # vosk raises a bare Exception
            raise RecognizerError(f"Vosk failed on the live audio: {e}") from None
        if ended:
            self._settled(self._rec.Result(), out)
        return ended

    def _decode(self, out: list[LiveResult], behind: bool) -> None:
        if self._accept(out):
            return
        if behind and self.decoded - self._partial_at < BEHIND_PARTIAL_SECONDS - 1e-9:
            self.partials_skipped += 1
            return
        self._partial_at = self.decoded
        partial = json.loads(self._rec.PartialResult())
        text = str(partial.get("partial", "")).strip()
        if not text or text == self._last_partial:
            return
        self._last_partial = text
        words = self._words(partial.get("partial_result", ()))
        if words:
            out.append(LiveResult(self.lane, False, text, words, words[0].start, words[-1].end))

    def _end_utterance(self, out: list[LiveResult]) -> None:
        if not self._speaking:
            return
        self._accept(out)
        self._settled(self._rec.FinalResult(), out)
        self._speaking = False
        self._silent_run = 0.0

    def _settled(self, result_json: str, out: list[LiveResult]) -> None:
        result = json.loads(result_json)
        self._last_partial = ""
        self._partial_at = self.decoded
        words = self._words(result.get("result", ()))
        self._clock.forget_before(self._fed)
        if words:
            out.append(LiveResult(self.lane, True, " ".join(w.text for w in words), words, words[0].start,
                                  words[-1].end))

    def _words(self, items: Any) -> tuple[LiveWord, ...]:
        words = []
        for item in items:
            start = self._clock.tap_time(float(item["start"]))
            end = max(start, self._clock.tap_time(float(item["end"])))
            words.append(LiveWord(str(item["word"]), round(start, 3), round(end, 3), float(item.get("conf", 1.0))))
        return tuple(words)


def vosk_recogniser(model: Any) -> Callable[[], Recogniser]:
    """A factory of fresh ``KaldiRecognizer`` s at 8 kHz with word times, for :class:`LaneDecoder`."""
    import vosk

    def make() -> Recogniser:
        try:
            rec = vosk.KaldiRecognizer(model, float(LIVE_RATE))
        except Exception as e:  # vosk raises a bare Exception
            raise RecognizerError(f"Vosk could not start a live recogniser: {e}") from None
        rec.SetWords(True)
        rec.SetPartialWords(True)
        return rec  # type: ignore[no-any-return]

    return make
