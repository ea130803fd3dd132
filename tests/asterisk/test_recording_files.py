"""A recording's name becomes a path inside the recordings folder, or is refused (asterisk/recording_files.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from asterisk.recording_files import RecordingSettings, recording_path
from companion.config import ConfigError, parse_config


def settings(tmp_path: Path, **more: object) -> RecordingSettings:
    return RecordingSettings.model_validate({"pbx_dir": "/var/spool/asterisk/monitor", "dir": str(tmp_path), **more})


def test_a_basename_and_the_pbx_full_path_name_the_same_file(tmp_path: Path) -> None:
    s = settings(tmp_path)
    name = "20261124-004150-79161340034-1795480910.341-in.wav"
    assert recording_path(s, "main", name) == tmp_path.resolve() / name
    assert recording_path(s, "main", f"/var/spool/asterisk/monitor/{name}") == tmp_path.resolve() / name


def test_without_dir_the_daemon_reads_where_the_pbx_writes() -> None:
    s = RecordingSettings()
    assert recording_path(s, "main", "1795479360.12.wav") == Path("/var/spool/asterisk/monitor/1795479360.12.wav")


@pytest.mark.parametrize("name", [
    "", ".", "..", "../journal.sqlite", "a/b.wav", "a\\b.wav", "a\x00.wav", "a\r\n.wav", "/etc/passwd",
    "/var/spool/asterisk/monitor/../../../etc/passwd", "/var/spool/asterisk/monitor/sub/x.wav",
    "/var/spool/asterisk/monitor", "/var/spool/asterisk/monitorx/a.wav",
])
def test_anything_but_a_file_of_the_folder_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        recording_path(settings(tmp_path), "main", name)


def test_a_symlink_out_of_the_folder_is_refused_one_inside_is_followed(tmp_path: Path) -> None:
    folder = tmp_path / "monitor"
    folder.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("not audio")
    (folder / "out.wav").symlink_to(secret)
    (folder / "real.wav").write_bytes(b"RIFF")
    (folder / "alias.wav").symlink_to(folder / "real.wav")
    s = settings(folder)
    with pytest.raises(ValueError, match="leads out"):
        recording_path(s, "main", "out.wav")
    assert recording_path(s, "main", "alias.wav") == (folder / "real.wav").resolve()


def test_a_folder_that_is_itself_a_link_still_works(tmp_path: Path) -> None:
    real = tmp_path / "share"
    real.mkdir()
    (tmp_path / "mounted").symlink_to(real)
    s = settings(tmp_path / "mounted")
    assert recording_path(s, "main", "a.wav") == real.resolve() / "a.wav"


def test_each_pbx_reads_its_own_folder(tmp_path: Path) -> None:
    s = settings(tmp_path / "main", folders={"spb": {"dir": str(tmp_path / "spb"), "pbx_dir": "/srv/rec"}})
    assert recording_path(s, "main", "a.wav").parent == (tmp_path / "main").resolve()
    assert recording_path(s, "spb", "/srv/rec/a.wav") == (tmp_path / "spb").resolve() / "a.wav"
    with pytest.raises(ValueError):  # spb's PBX writes into /srv/rec, not the default folder
        recording_path(s, "spb", "/var/spool/asterisk/monitor/a.wav")


@pytest.mark.parametrize(("section", "words"), [
    ({"dir": "relative/monitor"}, "not an absolute path"),
    ({"keep_days": 0}, "greater than or equal to 1"),
    ({"record": "sometimes"}, "record"),
    ({"queues": ["support\r\nAction: Logoff"]}, "control character"),
    ({"folders": {"Bad Id": {"dir": "/x"}}}, "PBX id"),
])
def test_a_bad_recording_section_is_a_config_error(section: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        parse_config({"recording": section})
