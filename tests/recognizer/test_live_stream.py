"""One lane's decoder in this process (``recognizer/live_stream.py``) with the Korean Vosk model: silence skipped,
word times on the tap's clock whatever was skipped or missing, an utterance settled at a gap and at the lane's end."""

from __future__ import annotations

from typing import Any

from recognizer.live_stream import LaneDecoder, vosk_recogniser
from tests.recognizer.live_audio import tapped_call
from tests.recognizer.test_live import SLACK


def test_silence_is_not_decoded_and_times_stay_on_the_tap_clock_across_a_gap(vosk_model: Any) -> None:
    call = tapped_call()
    decoder = LaneDecoder("customer", vosk_recogniser(vosk_model)())
    # The tap began 100 s into something, and 2 s of audio went missing at 12 s (between the first and second turns).
    frames = [f for f in call.frames("customer", offset=100.0) if not 112.0 <= f.start < 114.0]
    results = [r for f in frames for r in decoder.feed(f.pcm, f.start)]
    results += decoder.finish()
    spans = [(s + 100.0, e + 100.0) for s, e in call.spans("customer")]
    finals = [r for r in results if r.final]
    assert len(finals) >= len(spans)
    for result in results:
        assert all(any(s - SLACK <= w.start <= w.end <= e + SLACK for s, e in spans) for w in result.words), result
    assert abs(decoder.taken - sum(len(f.pcm) for f in frames) / 2 / 8000) < 1e-6
    # The customer talks 11 s of the call's 27: the silence in between is not decoded (lead-ins and 0.5 s ends are).
    assert decoder.decoded < 0.6 * decoder.taken, (decoder.decoded, decoder.taken)


def test_the_lane_s_end_settles_an_utterance_cut_short(vosk_model: Any) -> None:
    call = tapped_call()
    decoder = LaneDecoder("agent", vosk_recogniser(vosk_model)())
    results = [r for f in call.frames("agent", until=3.0) for r in decoder.feed(f.pcm, f.start)]
    assert not any(r.final for r in results)  # still talking at 3.0 s
    (last,) = decoder.finish()
    assert last.final and last.words and last.end <= 3.0 + 1e-6


def test_a_lane_behind_computes_fewer_partials_and_still_shows_its_words_grow(vosk_model: Any) -> None:
    """A worker behind on a lane (a loaded machine) thins its partials to one per second of an utterance: most are
    not computed, yet the reader still sees the words grow before each long utterance's final; finals are all kept."""
    call = tapped_call()
    seen = {}
    for behind in (False, True):
        decoder = LaneDecoder("customer", vosk_recogniser(vosk_model)())
        results = [r for f in call.frames("customer") for r in decoder.feed(f.pcm, f.start, behind=behind)]
        results += decoder.finish()
        seen[behind] = (results, decoder.partials_skipped)
    (on_time, skipped_on_time), (late, skipped_late) = seen[False], seen[True]
    assert skipped_on_time == 0 and skipped_late > 0
    assert len([r for r in late if r.final]) == len([r for r in on_time if r.final]) >= len(call.spans("customer"))
    first_final = next(i for i, r in enumerate(late) if r.final)
    assert any(not r.final for r in late[:first_final]), late  # the first utterance (4 s) grew before it settled
