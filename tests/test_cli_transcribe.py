"""``cti transcribe``: a period's recorded calls queued and transcribed in the command's own workers, with progress;
a second run finds nothing to do; ``--status`` shows the queue."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

from companion.config import load_config
from store import open_store
from tests.cli_runner import cti
from tests.daemon.conftest import write_config
from tests.speech import ko_model_dir, recordings_dir
from tests.store.builders import make_call

TRACE = "07-queue-ringall-answered"
FILE = "1795479360.12.wav"


def _config(tmp_path: Path) -> Path:
    folder = tmp_path / "monitor"
    folder.mkdir()
    shutil.copy(recordings_dir(TRACE) / FILE, folder / FILE)
    (folder / "cut.wav").write_bytes((folder / FILE).read_bytes()[:5000])
    return write_config(tmp_path, 5038, sections={
        "transcription": f'model = "{ko_model_dir()}"\nlanguage = "ko"',  # enabled = false: the daemon would not
        "recording": f'dir = "{folder}"'})


async def _calls(config: Path) -> None:
    """Two answered recorded calls in the period (one's file is cut short), one unanswered, one older."""
    settings = load_config(config)
    async with open_store(settings.store, region="RU") as store:
        for record in (
            make_call("1.1", answered=True, answered_by="102", started_at=1795479360.0, recording=FILE,
                      recordings=(FILE,)),
            make_call("1.2", answered=True, answered_by="101", started_at=1795479400.0, recording="cut.wav",
                      recordings=("cut.wav",)),
            make_call("1.3", answered=False, started_at=1795479500.0, recording=None, recordings=()),
            make_call("1.4", answered=True, answered_by="101", started_at=1795000000.0, recording=FILE,
                      recordings=(FILE,)),
        ):
            store.stage_call(record, None, ())
        await store.flush()


def test_transcribe_a_period_then_again_finds_nothing(tmp_path: Path) -> None:
    config = _config(tmp_path)
    asyncio.run(_calls(config))
    ran = cti("transcribe", "--config", str(config), "--since", "2026-11-23", "--until", "2026-11-30")
    out = ran.stdout
    assert "Queued 2 call(s); 2 job(s) to run" in out
    assert re.search(r"^\[1/2\] call 1\.1 \(main\): done in [\d.]+ s, ETA 0:\d\d$", out, re.M), out
    assert re.search(r"^\[2/2\] call 1\.2 \(main\): failed in [\d.]+ s: .*cut\.wav.*, ETA 0:00$", out, re.M), out
    assert "Transcribed 1 call(s) (0 flagged), 1 failed, 0 tries to repeat; 0 job(s) left in the queue" in out
    assert re.search(r"^  failed: call 1\.2 \(main, job \d+, 1 try\): .*cut\.wav", out, re.M), out

    again = cti("transcribe", "--config", str(config), "--since", "2026-11-23", "--until", "2026-11-30").stdout
    assert "Queued 0 call(s); 0 job(s) to run" in again
    assert "Transcribed 0 call(s)" in again and "[1/" not in again

    status = cti("transcribe", "--config", str(config), "--status").stdout
    assert re.search(r"done\W+1\b", status) and re.search(r"failed\W+1\b", status), status
    assert "1.2" in status and "cut.wav" in status


def test_transcribe_needs_a_period_and_a_model(tmp_path: Path) -> None:
    config = _config(tmp_path)
    ran = cti("transcribe", "--config", str(config), check=False)
    assert ran.returncode == 2 and "--since" in ran.stderr
    (tmp_path / "bare").mkdir()
    bare = write_config(tmp_path / "bare", 5038, sections={"transcription": 'model = ""'})
    ran = cti("transcribe", "--config", str(bare), "--since", "7d", check=False)
    assert ran.returncode == 2 and "[transcription] model is not set" in ran.stderr
