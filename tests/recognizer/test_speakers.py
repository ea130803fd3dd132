"""Telling agent and customer apart in a mono recording (``recognizer/speakers.py``).

Two kinds of tests:

* the clustering and the naming alone, on turns with made-up x-vectors (two voices as two directions in the 128-d
  space, with noise): who opens the call names the voices, a one-sided stretch names them, alike voices leave the
  words ``unknown`` except the greeting, a turn without a vector joins agreeing neighbours or stays ``unknown``;
* the real thing: the speech set's two stereo calls summed to mono, and the lab's real mono recordings
  (01-direct-answered, 07-queue-ringall-answered, the mix of 34-stereo-recording), transcribed by the Korean model
  (the only Vosk model here: its words are Korean-looking guesses at Russian and English speech, but their times are
  real), with vectors from ``vosk-model-spk-0.4``. The truth of the stereo calls is their utterance bounds
  (``calls.jsonl``); the truth of the lab's recordings is where each side's phrase lies in the mix, found by
  cross-correlating it with 34-stereo-recording's split files (``-out`` is the agent's phrase, ``-in`` the
  customer's; refs.json says the same phrases are in 01 and 07), a match of 0.99 or more.

The figures each real test measured are in its assertion messages and in docs/transcription.md.
"""

from __future__ import annotations

import itertools
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cti.transcripts import Speaker, Word
from recognizer.engine import CallAudio, Lane
from recognizer.speakers import (
    MAX_TURN,
    MIN_MARGIN,
    MIN_TURN,
    CallFacts,
    OneSided,
    Turn,
    assign_speakers,
    label_words,
    split_voices,
    turn_spans,
)
from recognizer.vosk_engine import VoskEngine, load_spk_model
from tests.recognizer.conftest import dither_free_view
from tests.speech import SPK_MODEL, SPLIT_BASE, SPLIT_TRACE, TRACES, recording_refs, speech_calls

#: Stated shares, checked against what was measured (docs/transcription.md has the figures).
#: The speech set's calls: at least this share of all words on the right speaker, at most that share on the wrong one.
CALLS_RIGHT = 0.75
CALLS_WRONG = 0.05
#: The lab's recordings, whose two voices the speaker model cannot tell apart: at most this share on the wrong one.
TRACES_WRONG = 0.05

Truth = list[tuple[float, float, Speaker]]


# ---------------------------------------------------------------- the clustering and the naming, made-up vectors

def _voices(seed: int, alike: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=128)
    b = a + 0.05 * rng.normal(size=128) if alike else rng.normal(size=128)
    return a / np.linalg.norm(a), b / np.linalg.norm(b)


def _turns(layout: Sequence[tuple[float, float, np.ndarray | None]], seed: int = 7) -> tuple[Turn, ...]:
    """Turns at the given times, each a voice's direction plus noise (cosine about 0.8 within a voice)."""
    rng = np.random.default_rng(seed)
    out = []
    for start, end, voice in layout:
        if voice is None:
            out.append(Turn(start, end))
            continue
        noise = rng.normal(size=128)
        vector = voice + 0.5 * noise / np.linalg.norm(noise)
        out.append(Turn(start, end, tuple(float(x) for x in vector), 150))
    return tuple(out)


def _words(turns: Sequence[Turn]) -> tuple[Word, ...]:
    """Two words in each turn."""
    out = []
    for i, turn in enumerate(turns):
        middle = (turn.start + turn.end) / 2
        out.append(Word("unknown", f"w{i}a", turn.start + 0.1, middle, 0.9))
        out.append(Word("unknown", f"w{i}b", middle, turn.end - 0.1, 0.9))
    return tuple(out)


def _speakers(words: Sequence[Word]) -> list[Speaker]:
    return [w.speaker for w in words]


def test_the_voice_that_opens_an_inbound_call_is_the_agent_and_an_outbound_one_the_customer() -> None:
    first, second = _voices(1)
    turns = _turns([(0.0, 2.0, first), (2.5, 5.0, second), (5.6, 8.0, first), (8.5, 10.0, second),
                    (10.5, 13.0, first)])
    words = _words(turns)
    inbound = label_words(words, turns, CallFacts(direction="inbound"))
    assert _speakers(inbound) == ["agent"] * 2 + ["customer"] * 2 + ["agent"] * 2 + ["customer"] * 2 + ["agent"] * 2
    outbound = label_words(words, turns, CallFacts(direction="outbound"))
    assert _speakers(outbound) == ["customer"] * 2 + ["agent"] * 2 + ["customer"] * 2 + ["agent"] * 2 + ["customer"] * 2
    # Only the speakers change: the words' texts, times and order are kept.
    assert [(w.text, w.start, w.end, w.conf) for w in inbound] == [(w.text, w.start, w.end, w.conf) for w in words]


def test_a_stretch_only_the_customer_could_be_heard_in_names_the_voices_without_a_direction() -> None:
    first, second = _voices(2)
    turns = _turns([(0.0, 2.0, first), (2.5, 5.0, second), (5.5, 8.0, first), (8.5, 11.0, second)])
    # Before the agent was connected (or while they had the customer on hold), only the customer's side was heard.
    facts = CallFacts(one_sided=(OneSided(0.0, 2.2, "customer"),))
    assert _speakers(label_words(_words(turns), turns, facts)) == (["customer"] * 2 + ["agent"] * 2) * 2
    # With a direction too, the opener's vote goes to the first turn after the stretches, and agrees.
    facts = CallFacts(direction="inbound", one_sided=(OneSided(0.0, 2.2, "customer"), OneSided(5.4, 8.1, "customer")))
    assert _speakers(label_words(_words(turns), turns, facts)) == (["customer"] * 2 + ["agent"] * 2) * 2


def test_voices_that_cannot_be_told_apart_leave_the_words_unknown_but_the_greeting() -> None:
    first, second = _voices(3, alike=True)
    turns = _turns([(0.0, 2.0, first), (2.5, 5.0, second), (5.5, 8.0, first), (8.5, 11.0, second)])
    voices = split_voices(turns)
    assert not voices.separable and voices.margin < MIN_MARGIN
    # Inbound: the first turn is the agent's greeting; the rest is not guessed from turn-taking.
    words = label_words(_words(turns), turns, CallFacts(direction="inbound"))
    assert _speakers(words) == ["agent"] * 2 + ["unknown"] * 6
    # An internal call has no customer and no rule: nothing is named.
    assert set(_speakers(label_words(_words(turns), turns, CallFacts(direction="internal")))) == {"unknown"}
    # Two voices apart but nothing says whose is whose: unknown too, never a coin toss.
    first, second = _voices(4)
    turns = _turns([(0.0, 2.0, first), (2.5, 5.0, second)])
    assert split_voices(turns).separable
    assert set(_speakers(label_words(_words(turns), turns, CallFacts()))) == {"unknown"}


def test_one_turn_or_none_with_a_vector_leaves_only_the_greeting_named() -> None:
    first, _ = _voices(5)
    turns = _turns([(0.0, 2.0, first), (2.5, 3.0, None)])
    assert _speakers(label_words(_words(turns), turns, CallFacts(direction="outbound"))) == ["customer"] * 2 + [
        "unknown"] * 2
    assert label_words((), turns, CallFacts(direction="inbound")) == ()
    # A word outside every turn (beyond the slack) stays unknown.
    lost = Word("unknown", "far", 20.0, 20.3, 0.5)
    assert label_words((lost,), turns, CallFacts()) == (lost,)


def test_a_turn_too_short_for_a_vector_joins_its_neighbours_only_when_they_agree() -> None:
    first, second = _voices(6)
    turns = _turns([(0.0, 2.0, first), (2.2, 2.6, None), (2.8, 5.0, first), (5.5, 5.9, None), (6.2, 8.0, second),
                    (8.5, 10.0, first)])
    speakers = _speakers(label_words(_words(turns), turns, CallFacts(direction="inbound")))
    assert speakers == ["agent"] * 6 + ["unknown"] * 2 + ["customer"] * 2 + ["agent"] * 2


def _tone_bursts(rate: int, bursts: Sequence[tuple[float, float, float]], length: float) -> bytes:
    """A lane of 300 Hz tone bursts (start, end, amplitude) over faint noise."""
    t = np.arange(int(length * rate)) / rate
    signal = np.random.default_rng(0).normal(scale=30.0, size=len(t))
    for start, end, amplitude in bursts:
        inside = (t >= start) & (t < end)
        signal[inside] += amplitude * np.sin(2 * np.pi * 300 * t[inside])
    return np.clip(signal, -32768, 32767).astype("<i2").tobytes()


def test_a_long_stretch_is_cut_at_its_quietest_moment_and_no_piece_is_too_short() -> None:
    rate = 8000
    # 0.5-3.9 s one side, a dip to a quarter at 3.9-4.0 s (no pause: the other side starts at once), 4.0-8.5 s the
    # other; then a short reply after a real pause.
    pcm = _tone_bursts(rate, [(0.5, 3.9, 8000), (3.9, 4.0, 2000), (4.0, 8.5, 8000), (10.0, 10.7, 8000)], 12.0)
    spans = turn_spans(pcm, rate)
    pieces = [span.seconds(rate) for span in spans]
    assert any(abs(end - 3.95) <= 0.1 for _, end in pieces), pieces
    for start, end in pieces:
        assert MIN_TURN - 1e-9 <= end - start <= MAX_TURN + 1e-9, pieces
    assert pieces[-1][1] - pieces[-1][0] < MIN_TURN + 0.7  # the short reply is its own turn, not cut
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(pieces))
    assert turn_spans(b"\x00\x00" * rate, rate) == ()


# ---------------------------------------------------------------- real audio, the Korean model, the speaker model

@pytest.fixture(scope="session")
def spk_model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``vosk-model-spk-0.4``, dither off like the Korean model (``conftest.py``): a run is exactly repeatable."""
    return load_spk_model(dither_free_view(SPK_MODEL, tmp_path_factory.mktemp("vosk-model-spk-nodither")))


def _read(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, w.getnchannels())
        return samples, w.getframerate()


def _score(words: Sequence[Word], truth: Truth) -> tuple[int, int, int]:
    """(right, wrong, unknown): a word's true speaker is the side whose stretch holds its middle (else the nearest)."""
    right = wrong = unknown = 0
    for word in words:
        middle = (word.start + word.end) / 2
        side = min(truth, key=lambda u: 0.0 if u[0] <= middle < u[1] else min(abs(middle - u[0]),
                                                                                abs(middle - u[1])))[2]
        if word.speaker == "unknown":
            unknown += 1
        elif word.speaker == side:
            right += 1
        else:
            wrong += 1
    return right, wrong, unknown


def _mono_words(engine: VoskEngine, pcm: bytes, rate: int) -> tuple[Word, ...]:
    words = engine.transcribe(CallAudio((Lane("unknown", pcm, rate),))).words
    assert words and {w.speaker for w in words} == {"unknown"}
    return words


def test_the_speech_sets_calls_summed_to_mono_put_the_words_on_the_right_speaker(
        vosk_engine: VoskEngine, spk_model: Any) -> None:
    totals = [0, 0, 0]
    utterances_right = utterances = 0
    report = []
    for call in speech_calls():
        samples, rate = _read(call.path)
        left = call.channels["left"]
        assert left == "agent" and samples.shape[1] == 2
        mono = np.clip(samples[:, 0].astype(np.int32) + samples[:, 1], -32768, 32767).astype("<i2").tobytes()
        truth: Truth = [(u.start, u.end, "agent" if u.channel == "agent" else "customer") for u in call.utterances]
        words = _mono_words(vosk_engine, mono, rate)
        named = assign_speakers(words, mono, rate, CallFacts(direction="inbound"), spk_model, vosk_engine.vosk_model)
        assert [(w.text, w.start, w.end) for w in named] == [(w.text, w.start, w.end) for w in words]
        right, wrong, unknown = _score(named, truth)
        for i, value in enumerate((right, wrong, unknown)):
            totals[i] += value
        # An utterance is right when most of its words are on its speaker.
        for start, end, side in truth:
            inside = [w for w in named if start <= (w.start + w.end) / 2 < end]
            if inside:
                utterances += 1
                utterances_right += sum(w.speaker == side for w in inside) * 2 > len(inside)
        report.append(f"{call.path.name}: {right} right, {wrong} wrong, {unknown} unknown of {len(named)} words")
    total = sum(totals)
    figures = "; ".join(report) + f"; utterances right {utterances_right}/{utterances}"
    assert totals[0] >= CALLS_RIGHT * total, figures
    assert totals[1] <= CALLS_WRONG * total, figures
    assert utterances_right >= CALLS_RIGHT * utterances, figures


def test_a_one_sided_stretch_names_the_voices_of_a_real_call(vosk_engine: VoskEngine, spk_model: Any) -> None:
    """No direction: only the stretch when the customer alone was heard (their first utterance) says which voice is
    whose."""
    call = speech_calls()[1]
    samples, rate = _read(call.path)
    mono = np.clip(samples[:, 0].astype(np.int32) + samples[:, 1], -32768, 32767).astype("<i2").tobytes()
    first_customer = next(u for u in call.utterances if u.channel == "customer")
    facts = CallFacts(one_sided=(OneSided(first_customer.start, first_customer.end, "customer"),))
    truth: Truth = [(u.start, u.end, "agent" if u.channel == "agent" else "customer") for u in call.utterances]
    words = _mono_words(vosk_engine, mono, rate)
    right, wrong, unknown = _score(assign_speakers(words, mono, rate, facts, spk_model, vosk_engine.vosk_model),
                                   truth)
    figures = f"{call.path.name}: {right} right, {wrong} wrong, {unknown} unknown"
    assert right >= CALLS_RIGHT * len(words) and wrong <= CALLS_WRONG * len(words), figures


def _phrase(path: Path) -> np.ndarray:
    samples, _ = _read(path)
    voiced = np.flatnonzero(samples[:, 0] != 0)
    return samples[voiced[0]:voiced[-1] + 1, 0].astype(np.float64)


def _located(mix: np.ndarray, rate: int) -> Truth:
    """Where the agent's and the customer's phrases of 34-stereo-recording's split files lie in a mix."""
    recordings = SPLIT_TRACE / "recordings"
    signal = mix.astype(np.float64)
    truth: Truth = []
    for suffix, side in (("-out", "agent"), ("-in", "customer")):
        phrase = _phrase(recordings / f"{SPLIT_BASE}{suffix}.wav")
        correlation = np.correlate(signal, phrase, mode="valid")
        at = int(np.argmax(correlation))
        window = signal[at:at + len(phrase)]
        match = correlation[at] / np.sqrt((phrase * phrase).sum() * (window * window).sum())
        assert match > 0.99, f"the {side}'s phrase is not in this recording ({match:.3f})"
        truth.append((at / rate, (at + len(phrase)) / rate, side))
    return truth


LAB_MONO = ("01-direct-answered", "07-queue-ringall-answered", "34-stereo-recording")


def _lab_mix(trace: str) -> Path:
    """The trace's mono recording whose refs say the agent spoke the split trace's agent phrase and the customer its
    customer phrase."""
    split = recording_refs(SPLIT_TRACE)
    agent_text = split[f"{SPLIT_BASE}-out.wav"]["sides"]["agent_102"]
    customer_text = split[f"{SPLIT_BASE}-in.wav"]["sides"]["customer"]
    for name, ref in recording_refs(trace).items():
        sides = ref["sides"]
        agents = [texts for side, texts in sides.items() if side.startswith("agent_")]
        if name.endswith(("-in.wav", "-out.wav")) or agents != [agent_text]:
            continue
        if sides.get("customer") == customer_text:
            return TRACES / trace / "recordings" / name
    raise AssertionError(f"{trace} has no mono recording of the split trace's two phrases")


def test_the_labs_mono_recordings_never_put_a_word_on_the_wrong_side(vosk_engine: VoskEngine,
                                                                      spk_model: Any) -> None:
    """The lab's two voices (espeak-ng's, played by the SIM) are as alike to the speaker model as one voice is to
    itself, so the voices are not told apart: the greeting is the agent's (an inbound call), the rest ``unknown``."""
    report = []
    totals = [0, 0, 0]
    for trace in LAB_MONO:
        samples, rate = _read(_lab_mix(trace))
        mix = samples[:, 0]
        truth = _located(mix, rate)
        pcm = mix.astype("<i2").tobytes()
        words = _mono_words(vosk_engine, pcm, rate)
        named = assign_speakers(words, pcm, rate, CallFacts(direction="inbound"), spk_model, vosk_engine.vosk_model)
        right, wrong, unknown = _score(named, truth)
        for i, value in enumerate((right, wrong, unknown)):
            totals[i] += value
        # The greeting (the call's first words) is the agent's.
        assert named[0].speaker == "agent", trace
        report.append(f"{trace}: {right} right, {wrong} wrong, {unknown} unknown of {len(named)} words")
    figures = "; ".join(report)
    assert totals[1] <= TRACES_WRONG * sum(totals), figures
    assert totals[0] >= 1, figures
