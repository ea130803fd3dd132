"""``python -m bench.transcription`` runs end to end on one tiny file: a smoke test of the benchmark, not a timing.

The benchmark is run rarely and by hand; this keeps it from rotting while the recogniser changes under it (the job
spec, the pool, ``eval_vosk.py`` imported from the shared folder). One mu-law utterance of 4 s, one round, no
throughput: the Korean model is loaded twice (the bare-Vosk process and one worker), nothing is timed or compared to a
figure, and ``docs/benchmarks.md`` is left alone (``--no-write``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import UNIT

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "benchmarks.md"


def _section() -> str:
    """The benchmark's own section of docs/benchmarks.md (other sections may be rewritten meanwhile)."""
    text = DOC.read_text(encoding="utf-8")
    start = text.find("<!-- bench.transcription:start -->")
    return text[start:text.find("<!-- bench.transcription:end -->")] if start >= 0 else ""


def test_the_transcription_bench_reports_one_file_against_bare_vosk() -> None:
    section_before = _section()
    done = subprocess.run(
        [sys.executable, "-m", "bench.transcription", "--files", "ru_01_8k_ulaw.wav", "--runs", "1",
         "--no-throughput", "--no-write"],
        cwd=REPO, capture_output=True, text=True, timeout=180 * UNIT, check=False)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    row = next(line for line in out.splitlines() if line.startswith("| utterances, 8 kHz G.711 mu-law |"))
    cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
    assert cells[1] == "4.1"  # the file's seconds of audio
    bare, ours, ratio = (float(cell.split()[0]) for cell in cells[2:5])
    assert bare > 0 and ours > 0
    assert abs(ratio - ours / bare) < 0.01  # one round: the ratio is the two figures'
    # The words are counted (bare Vosk with this model is not repeatable decode after decode: a count, not a check).
    assert "Same words as bare Vosk in the last round (per file, per side for a call):" in out
    assert " of 1 files." in out
    assert "**Throughput**" not in out
    assert _section() == section_before  # --no-write
