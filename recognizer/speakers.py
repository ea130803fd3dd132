"""Who said each word of a mono recording: the agent's voice told from the customer's, named by the call's facts.

Most dialplans record a mono mix (``MixMonitor`` without ``r()``/``t()``/``D``): both sides in one lane, so the
recogniser's words come out ``unknown``. :func:`assign_speakers` gives them back their speakers in three steps:

1. **Turns.** The lane is cut where it holds speech (:func:`recognizer.silence.speech_spans`), and each stretch longer
   than :data:`MAX_TURN` is cut again at its quietest moment, recursively. A speaker change is not always a pause: in
   the lab's recordings (01-direct-answered, 07-queue-ringall-answered) the customer starts within 0.1 s of the
   agent's last word, where a pause-based split sees one turn; the quietest moment of a long stretch is almost always
   between two words, often between two speakers.
2. **Voices.** Each turn gets an x-vector from the speaker model (``vosk-model-spk-0.4``, a Kaldi callhome
   x-vector model trained on 8 kHz telephone speech: its ``mfcc.conf`` says ``--sample-frequency=8000``, so telephone
   audio is fed at its own rate, and 16 kHz audio is downsampled by Kaldi: the same utterance's vectors at 16 and
   8 kHz agree at 0.79-0.91). Vosk computes it only beside a recogniser (the speech frames come from the decoder's
   traceback), so each turn is decoded once more, restricted to a grammar of the words already recognised in the
   call: about ten times cheaper than a free decode, the same vectors (a turn the grammar finds no speech in is
   decoded freely). A turn with fewer than Vosk's 50 speech frames has no vector. The turns with at least
   :data:`RELIABLE_FRAMES` are split into two voices by cosine similarity (two-means on the unit sphere, started from
   the two least alike turns); a shorter turn with a vector joins the voice it is clearly nearer to; a turn still
   without a voice takes its neighbours' when both agree, else stays ``unknown``.
3. **Names.** Which voice is the agent comes from what the call's facts say (:class:`CallFacts`): stretches where
   only one side could be heard (before the answer, the customer on hold), and who speaks first (the agent greets on
   an inbound call; on an outbound one the called party answers «Алло»).

**Never a coin toss.** When the two voices cannot be told apart (fewer than two reliable turns; the turns of one voice
not at least :data:`MIN_MARGIN` more alike than turns of the two; one reliable turn per voice and the two not below
:data:`DISTINCT`; centres at :data:`SAME_VOICE` or closer) or nothing says which voice is whose, the words stay
``unknown``, except where the facts alone name them: a one-sided stretch's words are that side's, and the call's
first turn is the side that opens it (the greeting). Turn-taking beyond the first turn is not guessed: a pause does
not mean the other side speaks next.

Measured (tests/recognizer/test_speakers.py, the Korean model's words as the lab has no Russian one): on the two
stereo calls of ``../shared/speech`` summed to mono and on the lab's mono recordings, see docs/transcription.md's
``## Speakers in mono recordings``. The speech set's voices are espeak-ng's, and two synthetic voices are more alike
than two people (cosine about 0.6 between them, 0.7-0.9 within one).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from cti.transcripts import Speaker, Word
from recognizer.silence import FRAME, Span, frame_levels, speech_spans

#: A turn longer than this (seconds) is cut at its quietest moment: a vector per ~1-2 s, as Kaldi's diarization
#: recipe does (1.5 s windows), and a speaker change without a pause is still found.
MAX_TURN = 3.0
#: No piece shorter than this (seconds) is cut off a turn: Vosk needs 50 speech frames (0.5 s) for a vector.
MIN_TURN = 1.0
#: Vosk's own floor (``MIN_SPK_FEATS``): a turn with fewer speech frames gets no vector.
MIN_VECTOR_FRAMES = 50
#: Speech frames a turn's vector needs to take part in finding the two voices: shorter turns' vectors are noisy (on
#: the lab's recordings, pieces of one espeak-ng voice of 50-100 frames are as alike to each other as to the other
#: voice), so they only join the voice they are clearly nearer to.
RELIABLE_FRAMES = 100
#: How much nearer (cosine) to one voice's centre than to the other's a short turn must be to join it.
CLEARLY_NEARER = 0.1
#: Two voices whose centres are at least this alike (cosine) are one voice for all we can tell.
SAME_VOICE = 0.8
#: The turns of one voice must be at least this much more alike (mean cosine) than turns of the two voices: below
#: it the split is noise. Real speakers differ by about 0.3 (vosk-model-spk-0.4's MODEL.md), the speech set's two
#: espeak-ng voices by about 0.25, the lab's trace voices not at all (0.91 between the agent's and the customer's
#: whole phrases of 34-stereo-recording).
MIN_MARGIN = 0.15
#: With one reliable turn per voice, the two are told apart only when less alike than this (real speakers: 0.25-0.43;
#: one espeak-ng voice's two phrases in the lab's recordings: 0.65-0.67).
DISTINCT = 0.5
#: A word this close (seconds) to a turn belongs to it when it lies in no turn (word times and levels differ a bit).
WORD_SLACK = 0.3
#: Frames of the moving average the quietest moment is looked for in (3 x 20 ms).
_SMOOTH_FRAMES = 3

Side = Literal["agent", "customer"]
Direction = Literal["inbound", "outbound", "internal"]


@dataclass(frozen=True, slots=True)
class OneSided:
    """A stretch of the recording (seconds into it) in which only one side could be heard: before the other side was
    connected, or while the customer was on hold (the music is the customer's channel's)."""

    start: float
    end: float
    speaker: Side


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the journal knows of a call that says who speaks when, as plain values (the recogniser's worker gets them
    with the job; nothing here reads the store).

    ``direction`` is the call's (``CallRecord.direction``): on an inbound call the agent greets first, on an outbound
    one the called party (the customer) answers first; an internal call has no customer and no rule. ``first_speaker``
    overrides that rule when the centre knows better (an IVR that lets the customer speak first). ``one_sided`` are the
    stretches when only one side could be heard, in seconds into the recording.
    """

    direction: Direction | None = None
    first_speaker: Side | None = None
    one_sided: tuple[OneSided, ...] = ()

    def opener(self) -> Side | None:
        """Who says the first words once both sides are connected."""
        if self.first_speaker is not None:
            return self.first_speaker
        if self.direction == "inbound":
            return "agent"
        if self.direction == "outbound":
            return "customer"
        return None

    def heard_alone(self, start: float, end: float) -> Side | None:
        """The side that alone could be heard over most of ``[start, end)``, if a one-sided stretch says so."""
        length = max(end - start, 1e-9)
        for stretch in self.one_sided:
            if min(end, stretch.end) - max(start, stretch.start) > 0.5 * length:
                return stretch.speaker
        return None


@dataclass(frozen=True, slots=True)
class Turn:
    """A piece of the lane one voice speaks in (seconds into the recording) and its x-vector, when it has one."""

    start: float
    end: float
    vector: tuple[float, ...] | None = None
    #: The speech frames the vector was computed from (``spk_frames``): more is more reliable.
    frames: int = 0


@dataclass(frozen=True, slots=True)
class Voices:
    """How the turns split into two voices: each turn's voice (0, 1, or None: no vector and no agreeing neighbours),
    and how alike the two voices' centres are (1.0 when there is one voice or none)."""

    labels: tuple[int | None, ...]
    similarity: float
    #: How much more alike the turns of one voice are than turns of the two (mean cosine within minus between).
    margin: float = 0.0

    @property
    def separable(self) -> bool:
        return self.similarity < SAME_VOICE and self.margin >= MIN_MARGIN and {0, 1} <= set(self.labels)


def assign_speakers(words: Sequence[Word], pcm: bytes, rate: int, facts: CallFacts, spk_model: Any,
                    asr_model: Any) -> tuple[Word, ...]:
    """The words of a mono lane (16-bit PCM at ``rate``, word times seconds into it) with their speakers.

    ``spk_model`` is a loaded ``vosk.SpkModel`` (``recognizer.vosk_engine.load_spk_model``), ``asr_model`` the
    ``vosk.Model`` whose decoder gives the speech frames (any language: the words' own model when it is Vosk's). Words
    stay ``unknown`` where the voices cannot be told apart and the facts do not say (see the module's docstring);
    the words' texts, times and order are kept.
    """
    if not words:
        return ()
    spans = turn_spans(pcm, rate)
    vocabulary = sorted({w.text for w in words if w.text and not w.text.startswith("[")})
    turns = tuple(turn_vector(pcm, rate, span, spk_model, asr_model, vocabulary) for span in spans)
    return label_words(words, turns, facts)


def label_words(words: Sequence[Word], turns: Sequence[Turn], facts: CallFacts) -> tuple[Word, ...]:
    """The words with the speakers of the turns they fall in (pure: no model, the clustering and the naming)."""
    speakers = turn_speakers(turns, facts)
    out = []
    for word in words:
        alone = facts.heard_alone(word.start, word.end)
        if alone is not None:
            out.append(replace(word, speaker=alone))
            continue
        index = _turn_of(word, turns)
        out.append(replace(word, speaker=speakers[index] if index is not None else "unknown"))
    return tuple(out)


def turn_speakers(turns: Sequence[Turn], facts: CallFacts) -> tuple[Speaker, ...]:
    """Each turn's speaker: its voice named by the facts, or only what the facts say alone when the voices cannot be
    told apart or named."""
    voices = split_voices(turns)
    names = name_voices(turns, voices, facts) if voices.separable else None
    out: list[Speaker] = []
    for turn, label in zip(turns, voices.labels, strict=True):
        alone = facts.heard_alone(turn.start, turn.end)
        if alone is not None:
            out.append(alone)
        elif names is not None and label is not None:
            out.append(names[label])
        else:
            out.append("unknown")
    # The call's first turn (after any one-sided stretch) is the side that opens it, voice or no voice.
    opener = facts.opener()
    first = next((i for i, turn in enumerate(turns) if facts.heard_alone(turn.start, turn.end) is None), None)
    if opener is not None and first is not None and out[first] == "unknown":
        out[first] = opener
    return tuple(out)


def split_voices(turns: Sequence[Turn]) -> Voices:
    """The turns split into two voices: the reliable ones (:data:`RELIABLE_FRAMES` speech frames or more) by two-means
    on the unit sphere, weighted by their frames and started from the two least alike; a shorter turn with a vector
    joins the nearer voice when it is clearly nearer (:data:`CLEARLY_NEARER`); a turn still without a voice takes its
    neighbours' when both agree."""
    labels: list[int | None] = [None] * len(turns)
    indexed = [(i, t) for i, t in enumerate(turns) if t.vector is not None and t.frames >= RELIABLE_FRAMES]
    if len(indexed) < 2:
        return Voices(tuple(labels), 1.0)
    vectors = _unit(np.array([t.vector for _, t in indexed], dtype=np.float64))
    weights = np.array([t.frames for _, t in indexed], dtype=np.float64)
    similarity = vectors @ vectors.T
    a, b = np.unravel_index(int(np.argmin(similarity)), similarity.shape)
    if a == b:
        return Voices(tuple(labels), 1.0)  # every vector the same
    centres = vectors[[a, b]]
    assigned = np.argmax(vectors @ centres.T, axis=1)
    for _ in range(20):
        moved = np.array([_centre(vectors[assigned == k], weights[assigned == k]) for k in (0, 1)])
        new = np.argmax(vectors @ moved.T, axis=1)
        centres = moved
        if {0, 1} - set(new.tolist()) or np.array_equal(new, assigned):
            break  # settled (or one voice would take every turn: keep the last two-voice split)
        assigned = new
    for (i, _), k in zip(indexed, assigned.tolist(), strict=True):
        labels[i] = int(k)
    for i, turn in enumerate(turns):
        if labels[i] is None and turn.vector is not None and turn.frames >= MIN_VECTOR_FRAMES:
            near = centres @ _unit(np.array([turn.vector], dtype=np.float64))[0]
            if abs(float(near[0] - near[1])) >= CLEARLY_NEARER:
                labels[i] = int(np.argmax(near))
    _fill_between(labels)
    if {0, 1} - set(assigned.tolist()):
        return Voices(tuple(labels), 1.0)
    same = assigned[:, None] == assigned[None, :]
    np.fill_diagonal(same, False)
    between = float(similarity[assigned[:, None] != assigned[None, :]].mean())
    if not same.any():
        # One reliable turn per voice: nothing to compare a voice with itself, only how far apart the two are.
        return Voices(tuple(labels), float(centres[0] @ centres[1]), 1.0 if between < DISTINCT else 0.0)
    return Voices(tuple(labels), float(centres[0] @ centres[1]), float(similarity[same].mean()) - between)


def name_voices(turns: Sequence[Turn], voices: Voices, facts: CallFacts) -> dict[int, Speaker] | None:
    """Which voice is the agent's: the one-sided stretches' turns vote (by speech frames, for the side heard alone),
    and the first turn after them votes for the side that opens the call. None when nothing (or a tie) says."""
    score = 0.0  # > 0: voice 0 is the agent
    for turn, label in zip(turns, voices.labels, strict=True):
        alone = facts.heard_alone(turn.start, turn.end)
        if alone is not None and label is not None:
            weight = float(max(turn.frames, MIN_VECTOR_FRAMES))
            score += weight if (label == 0) == (alone == "agent") else -weight
    opener = facts.opener()
    if opener is not None:
        for turn, label in zip(turns, voices.labels, strict=True):
            if facts.heard_alone(turn.start, turn.end) is not None or label is None:
                continue
            # The opening turn weighs as much as a long turn heard alone: a convention, not a recording of the side.
            weight = float(max(turn.frames, MIN_VECTOR_FRAMES))
            score += weight if (label == 0) == (opener == "agent") else -weight
            break
    if score == 0.0:
        return None
    return {0: "agent", 1: "customer"} if score > 0 else {0: "customer", 1: "agent"}


def turn_spans(pcm: bytes, rate: int) -> tuple[Span, ...]:
    """The lane's speech cut into turns: :func:`recognizer.silence.speech_spans`' stretches, each longer than
    :data:`MAX_TURN` cut at its quietest moment (a moving average over 60 ms), until every piece is short enough or
    too short to cut (:data:`MIN_TURN` either side)."""
    spans = speech_spans(pcm, rate)
    if not spans:
        return ()
    levels = frame_levels(pcm, rate)
    if len(levels) >= _SMOOTH_FRAMES:
        levels = np.convolve(levels, np.ones(_SMOOTH_FRAMES) / _SMOOTH_FRAMES, mode="same")
    frame = max(1, int(rate * FRAME))
    out: list[Span] = []
    pending = list(reversed(spans))
    while pending:
        span = pending.pop()
        if (span.end - span.start) <= MAX_TURN * rate:
            out.append(span)
            continue
        first = (span.start + int(MIN_TURN * rate)) // frame
        last = (span.end - int(MIN_TURN * rate)) // frame
        if last <= first:
            out.append(span)
            continue
        cut = (first + int(np.argmin(levels[first:last]))) * frame
        pending.append(Span(cut, span.end))
        pending.append(Span(span.start, cut))
    return tuple(out)


def turn_vector(pcm: bytes, rate: int, span: Span, spk_model: Any, asr_model: Any,
                vocabulary: Sequence[str] = ()) -> Turn:
    """One turn's x-vector (Vosk's ``spk``), decoded against the call's own vocabulary when there is one (cheap), else
    freely; no vector when Vosk found fewer than :data:`MIN_VECTOR_FRAMES` speech frames in it."""
    import vosk

    start, end = span.seconds(rate)
    audio = pcm[span.start * 2:span.end * 2]
    attempts: list[str | None] = [json.dumps(list(vocabulary), ensure_ascii=False)] if vocabulary else []
    attempts.append(None)
    for grammar in attempts:
        if grammar is None:
            recognizer = vosk.KaldiRecognizer(asr_model, float(rate), spk_model)
        else:
            recognizer = vosk.KaldiRecognizer(asr_model, float(rate), grammar)
            recognizer.SetSpkModel(spk_model)
        recognizer.AcceptWaveform(audio)
        result = json.loads(recognizer.FinalResult())
        spk = result.get("spk")
        frames = int(result.get("spk_frames", 0))
        if spk and frames >= MIN_VECTOR_FRAMES and _finite(spk):
            return Turn(start, end, tuple(float(x) for x in spk), frames)
    return Turn(start, end)


def _unit(vectors: np.ndarray) -> np.ndarray:
    unit: np.ndarray = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return unit


def _centre(vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted mean direction of unit vectors."""
    mean: np.ndarray = (vectors * weights[:, None]).sum(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def _fill_between(labels: list[int | None]) -> None:
    """A turn without a voice takes its neighbours' when the nearest voiced turns on both sides agree."""
    known = [i for i, label in enumerate(labels) if label is not None]
    for i, label in enumerate(labels):
        if label is not None:
            continue
        before = max((k for k in known if k < i), default=None)
        after = min((k for k in known if k > i), default=None)
        if before is not None and after is not None and labels[before] == labels[after]:
            labels[i] = labels[before]


def _turn_of(word: Word, turns: Sequence[Turn]) -> int | None:
    """The turn a word falls in (its middle), else the nearest within :data:`WORD_SLACK`."""
    middle = (word.start + word.end) / 2
    best: tuple[float, int] | None = None
    for i, turn in enumerate(turns):
        if turn.start <= middle < turn.end:
            return i
        distance = turn.start - middle if middle < turn.start else middle - turn.end
        if distance <= WORD_SLACK and (best is None or distance < best[0]):
            best = (distance, i)
    return best[1] if best is not None else None


def _finite(vector: Sequence[float]) -> bool:
    return all(math.isfinite(x) for x in vector)
