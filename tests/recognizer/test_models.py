"""Speech models: a download from a real local mirror that drops the connection resumes with ``Range`` and installs
a model that checks; a wrong checksum or a zip-slip archive installs nothing; a partial or corrupt model folder
(built from the real Korean model's files, hard-linked, one of them cut short) is refused at load with a reason that
names the file, through the Vosk engine too, and the process goes on."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from recognizer.engine import ModelError
from recognizer.model_check import (
    MANIFEST,
    PARTIAL_MARKER,
    check_model,
    check_speaker_model,
    check_vosk_model,
    check_whisper_model,
)
from recognizer.models import (
    ChecksumMismatch,
    DownloadError,
    UnknownModel,
    UnsafeArchive,
    available,
    download,
    installed,
    parse_catalogue,
    part_path,
)
from tests.model_server import Mirror, serve_mirror, write_fake_vosk_model, zip_folder, zip_members
from tests.speech import SPK_MODEL, ko_model_dir

NAME = "vosk-model-small-ru-0.22"


@pytest.fixture
def mirror() -> Iterator[Mirror]:
    with serve_mirror() as served:
        yield served


@pytest.fixture
def fake_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    # big enough that a dropped transfer stops in the middle of it: a README of incompressible bytes
    folder = write_fake_vosk_model(tmp_path_factory.mktemp("src") / NAME)
    (folder / "README").write_bytes(hashlib.shake_256(b"x").digest(256 * 1024))
    return zip_folder(folder, top=NAME)


def _hardlinked_copy(source: Path, target: Path) -> Path:
    """The folder's files as hard links (no 250 MB copy); a file replaced in the copy leaves the original alone."""
    shutil.copytree(source, target, copy_function=os.link)
    return target


def _cut(file: Path, keep: int) -> None:
    """Replace ``file`` (a hard link) by a new file holding its first ``keep`` bytes."""
    data = file.read_bytes()[:keep]
    file.unlink()
    file.write_bytes(data)


# -- the download --------------------------------------------------------------------------------------------------


def test_a_dropped_connection_is_resumed_with_range_and_the_model_installed(
        mirror: Mirror, fake_zip: bytes, tmp_path: Path) -> None:
    path = mirror.add_model(NAME, fake_zip)
    mirror.drops[path] = 1
    models = tmp_path / "models"

    report = download(NAME, models, catalogue_url=mirror.catalogue_url, retry_delay=0)

    assert report.retries == 1
    seen = mirror.ranges(path)
    assert seen[0] is None and seen[1] == f"bytes={len(fake_zip) // 2}-"  # the resume asked for the rest only
    target = models / NAME
    assert report.model.path == target and report.model.ok
    check_vosk_model(target)
    assert (target / "am" / "final.mdl").is_file()  # the zip's top folder became the model folder
    assert (target / MANIFEST).is_file()
    assert not part_path(models, NAME).exists()
    assert [p.name for p in models.iterdir() if p.name.startswith(".unpack")] == []


def test_a_download_stopped_in_one_run_resumes_in_the_next(mirror: Mirror, fake_zip: bytes, tmp_path: Path) -> None:
    path = mirror.add_model(NAME, fake_zip)
    mirror.drops[path] = 1
    models = tmp_path / "models"

    with pytest.raises(DownloadError, match=r"run the same command again to resume"):
        download(NAME, models, catalogue_url=mirror.catalogue_url, attempts=1, retry_delay=0)
    assert part_path(models, NAME).stat().st_size == len(fake_zip) // 2
    assert not (models / NAME).exists()

    report = download(NAME, models, catalogue_url=mirror.catalogue_url, retry_delay=0)
    assert report.resumed_from == len(fake_zip) // 2
    assert mirror.ranges(path)[-1] == f"bytes={len(fake_zip) // 2}-"
    check_vosk_model(models / NAME)


def test_a_model_already_installed_is_not_fetched_again(mirror: Mirror, fake_zip: bytes, tmp_path: Path) -> None:
    path = mirror.add_model(NAME, fake_zip)
    download(NAME, tmp_path, catalogue_url=mirror.catalogue_url, retry_delay=0)
    again = download(NAME, tmp_path, catalogue_url=mirror.catalogue_url, retry_delay=0)
    assert again.already_installed
    assert len(mirror.ranges(path)) == 1


def test_a_broken_model_is_replaced_by_a_whole_one(mirror: Mirror, fake_zip: bytes, tmp_path: Path) -> None:
    mirror.add_model(NAME, fake_zip)
    download(NAME, tmp_path, catalogue_url=mirror.catalogue_url, retry_delay=0)
    _cut(tmp_path / NAME / "graph" / "HCLG.fst", 30)
    with pytest.raises(ModelError, match=r"graph/HCLG.fst is cut short"):
        check_vosk_model(tmp_path / NAME)

    report = download(NAME, tmp_path, catalogue_url=mirror.catalogue_url, retry_delay=0)
    assert not report.already_installed and report.model.ok
    check_vosk_model(tmp_path / NAME)


def test_a_wrong_checksum_deletes_the_download_and_installs_nothing(
        mirror: Mirror, fake_zip: bytes, tmp_path: Path) -> None:
    mirror.add_model(NAME, fake_zip, md5="0" * 32)
    with pytest.raises(ChecksumMismatch, match=r"does not match its md5.*deleted and nothing installed"):
        download(NAME, tmp_path, catalogue_url=mirror.catalogue_url, retry_delay=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".catalogue.json"]


@pytest.mark.parametrize("member", ["../escaped.txt", "/tmp/absolute.txt", "model/../../escaped.txt",
                                    "C:/windows.txt", "..\\escaped.txt"])
def test_a_zip_slip_archive_is_refused(mirror: Mirror, tmp_path: Path, member: str) -> None:
    folder = write_fake_vosk_model(tmp_path / "src")
    members = {f"{NAME}/{p.relative_to(folder).as_posix()}": p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    members[member] = b"owned"
    mirror.add_model(NAME, zip_members(members))
    models = tmp_path / "models"

    with pytest.raises(UnsafeArchive, match=r"outside its folder"):
        download(NAME, models, catalogue_url=mirror.catalogue_url, retry_delay=0)
    assert sorted(p.name for p in models.iterdir()) == [".catalogue.json"]
    assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/absolute.txt").exists()


def test_an_archive_without_a_model_installs_nothing(mirror: Mirror, tmp_path: Path) -> None:
    mirror.add_model(NAME, zip_members({f"{NAME}/README": b"no model here\n"}))
    with pytest.raises(Exception, match=r"does not hold a usable model: .*no am/final.mdl"):
        download(NAME, tmp_path, catalogue_url=mirror.catalogue_url, retry_delay=0)
    assert not (tmp_path / NAME).exists()


def test_an_unknown_name_is_refused_with_the_close_ones(mirror: Mirror, fake_zip: bytes, tmp_path: Path) -> None:
    mirror.add_model(NAME, fake_zip)
    with pytest.raises(UnknownModel, match=rf"did you mean {NAME}"):
        download("small-ru", tmp_path, catalogue_url=mirror.catalogue_url)
    with pytest.raises(UnknownModel, match=r"not a model name"):
        download("../etc", tmp_path, catalogue_url=mirror.catalogue_url)


def test_the_list_is_kept_for_when_the_network_is_down(mirror: Mirror, fake_zip: bytes, tmp_path: Path) -> None:
    mirror.add_model(NAME, fake_zip)
    first = available(tmp_path, url=mirror.catalogue_url)
    assert [m.name for m in first.models] == [NAME] and first.stale is None
    del mirror.files["/vosk/models/model-list.json"]  # the server now answers 404
    again = available(tmp_path, url=mirror.catalogue_url, refresh=True)
    assert [m.name for m in again.models] == [NAME]
    assert again.stale == "the server answered 404"
    assert [m.name for m in available(tmp_path, url=mirror.catalogue_url, offline=True).models] == [NAME]


def test_hostile_catalogue_entries_are_left_out() -> None:
    entries = (
        b'[{"name": "../../etc", "url": "https://a/x.zip", "md5": "' + b"0" * 32 + b'"},'
        b' {"name": "plain-http", "url": "http://a/x.zip", "md5": "' + b"0" * 32 + b'"},'
        b' {"name": "bad-md5", "url": "https://a/x.zip", "md5": "not hex"},'
        b' {"name": "vosk-model-small-en-us-0.15", "lang": "en-us", "type": "small", "obsolete": "false",'
        b'  "url": "https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip", "size": 41205931,'
        b'  "md5": "09d6ab2b1a2fd7fa3cd7b7b9e2ba6cbd"},'
        b' "not an object"]'
    )
    models = parse_catalogue(entries, "https://alphacephei.com/vosk/models/model-list.json")
    assert [m.name for m in models] == ["vosk-model-small-en-us-0.15"]
    assert models[0].size == 41205931 and models[0].lang == "en-us" and not models[0].obsolete


# -- the check at load ---------------------------------------------------------------------------------------------


def test_the_real_models_pass() -> None:
    check_vosk_model(ko_model_dir())
    check_speaker_model(SPK_MODEL)
    assert check_model(SPK_MODEL) == "speaker"


@pytest.mark.parametrize(("rel", "keep", "reason"), [
    ("am/final.mdl", 7_000_000, "am/final.mdl is cut short"),
    ("graph/Gr.fst", 30_000_000, "graph/Gr.fst is cut short"),
    ("graph/Gr.fst", 1_000, "graph/Gr.fst is cut short"),
    ("ivector/final.ie", 19_000_000, "ivector/final.ie is cut short"),
    ("ivector/final.mat", 40_000, "ivector/final.mat is cut short"),
    ("graph/disambig_tid.int", 20, "graph/disambig_tid.int ends in the middle of a line"),
    ("conf/mfcc.conf", 0, "conf/mfcc.conf is empty"),
])
def test_a_korean_model_with_a_file_cut_short_is_refused(tmp_path: Path, rel: str, keep: int, reason: str) -> None:
    model = _hardlinked_copy(ko_model_dir(), tmp_path / "vosk-model-small-ko")
    _cut(model / rel, keep)
    with pytest.raises(ModelError, match=reason) as refused:
        check_vosk_model(model)
    assert str(model) in str(refused.value)


@pytest.mark.parametrize(("damage", "reason"), [
    (lambda m: (m / "graph" / "HCLr.fst").unlink(), "graph/HCLr.fst is missing"),
    (lambda m: shutil.rmtree(m / "am"), "is not a Vosk model: it has no am/final.mdl"),
    (lambda m: (m / PARTIAL_MARKER).touch(), "an unfinished download or unpacking left it"),
    (lambda m: (m / "graph" / "HCLr.fst.part").touch(), "left graph/HCLr.fst.part in it"),
    (lambda m: (m / "ivector" / "final.dubm").unlink(), "ivector/final.dubm is missing"),
])
def test_a_korean_model_missing_a_part_is_refused(tmp_path: Path, damage: object, reason: str) -> None:
    model = _hardlinked_copy(ko_model_dir(), tmp_path / "ko")
    assert callable(damage)
    damage(model)
    with pytest.raises(ModelError, match=reason):
        check_vosk_model(model)


def test_a_missing_folder_and_a_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"does not exist"):
        check_vosk_model(tmp_path / "nowhere")
    (tmp_path / "model.zip").write_bytes(b"PK")
    with pytest.raises(ModelError, match=r"is a file, not a model folder"):
        check_vosk_model(tmp_path / "model.zip")


def test_the_vosk_engine_refuses_a_partial_model_and_the_process_goes_on(tmp_path: Path) -> None:
    from recognizer.vosk_engine import VoskEngine

    model = _hardlinked_copy(ko_model_dir(), tmp_path / "ko")
    _cut(model / "graph" / "Gr.fst", 24_000_000)
    with pytest.raises(ModelError, match=r"graph/Gr.fst is cut short"):
        VoskEngine(model)


def test_a_speaker_model_cut_short_is_refused(tmp_path: Path) -> None:
    model = _hardlinked_copy(SPK_MODEL, tmp_path / "spk")
    _cut(model / "final.ext.raw", 10_000_000)
    with pytest.raises(ModelError, match=r"final.ext.raw is cut short \(it does not end with </Nnet3>\)"):
        check_speaker_model(model)
    shutil.copy(SPK_MODEL / "final.ext.raw", model / "final.ext.raw")
    _cut(model / "transform.mat", 60_000)
    with pytest.raises(ModelError, match=r"transform.mat is cut short"):
        check_speaker_model(model)


def _ct2_model(variables: int = 3) -> bytes:
    """A CTranslate2 model.bin (binary version 6): a name, a revision, variables, no aliases."""

    def string(text: str) -> bytes:
        return struct.pack("<H", len(text) + 1) + text.encode() + b"\0"

    out = struct.pack("<I", 6) + string("WhisperSpec") + struct.pack("<II", 3, variables)
    for i in range(variables):
        out += string(f"encoder/layer_{i}/weight") + struct.pack("<BII", 2, 4, 4) + struct.pack("<BI", 0, 64)
        out += bytes(64)
    return out + struct.pack("<I", 0)


def test_a_whisper_model_cut_short_or_in_parts_is_refused(tmp_path: Path) -> None:
    model = tmp_path / "whisper-tiny"
    model.mkdir()
    (model / "model.bin").write_bytes(_ct2_model())
    (model / "config.json").write_text('{"suppress_ids": []}')
    (model / "vocabulary.txt").write_text("a\nb\n")
    (model / "tokenizer.json").write_text('{"model": {}}')
    check_whisper_model(model)

    (model / "model.bin").write_bytes(_ct2_model()[:-40])
    with pytest.raises(ModelError, match=r"model.bin is cut short"):
        check_whisper_model(model)
    (model / "model.bin").rename(model / "model.bin.part1")
    with pytest.raises(ModelError, match=r"join them into model.bin"):
        check_whisper_model(model)
    (model / "model.bin").write_bytes(_ct2_model())
    (model / "tokenizer.json").write_text('{"model": ')
    with pytest.raises(ModelError, match=r"tokenizer.json is not valid JSON"):
        check_whisper_model(model)


def test_the_real_whisper_base_model_passes() -> None:
    from tests.recognizer.whisper_model import whisper_base_dir

    check_whisper_model(whisper_base_dir())
    assert check_model(whisper_base_dir()) == "whisper"


def test_installed_lists_every_folder_with_its_verdict(mirror: Mirror, fake_zip: bytes, tmp_path: Path) -> None:
    mirror.add_model(NAME, fake_zip)
    download(NAME, tmp_path, catalogue_url=mirror.catalogue_url, retry_delay=0)
    _hardlinked_copy(SPK_MODEL, tmp_path / "vosk-model-spk-0.4")
    broken = write_fake_vosk_model(tmp_path / "vosk-model-small-en-us-0.15")
    (broken / "conf" / "model.conf").write_bytes(b"")

    found = {m.name: m for m in installed(tmp_path)}
    assert sorted(found) == sorted([NAME, "vosk-model-small-en-us-0.15", "vosk-model-spk-0.4"])
    assert found[NAME].ok and found[NAME].lang == "ru" and found[NAME].kind == "vosk"
    assert found["vosk-model-spk-0.4"].ok and found["vosk-model-spk-0.4"].kind == "speaker"
    assert found["vosk-model-small-en-us-0.15"].problem is not None
    assert "conf/model.conf is empty" in found["vosk-model-small-en-us-0.15"].problem


def test_a_downloaded_file_changed_later_is_told_by_the_manifest(
        mirror: Mirror, fake_zip: bytes, tmp_path: Path) -> None:
    mirror.add_model(NAME, fake_zip)
    download(NAME, tmp_path, catalogue_url=mirror.catalogue_url, retry_delay=0)
    _cut(tmp_path / NAME / "README", 100)  # a file no format check reads: only the recorded size tells
    with pytest.raises(ModelError, match=r"README is cut short \(100 bytes, \d+ when installed\)"):
        check_vosk_model(tmp_path / NAME)
