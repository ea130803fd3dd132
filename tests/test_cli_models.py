"""``cti models list|download`` against a real local mirror: what an admin sees (installed OK or broken and why, the
official list), a download that says it resumed, and refusals in one line (exit 2 for input, 1 for the work)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_runner import cti
from tests.model_server import Mirror, serve_mirror, write_fake_vosk_model, zip_folder

NAME = "vosk-model-small-ru-0.22"
OTHER = "vosk-model-en-us-0.22-lgraph"


@pytest.fixture
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirror]:
    folder = write_fake_vosk_model(tmp_path_factory.mktemp("src") / NAME)
    (folder / "README").write_bytes(hashlib.shake_256(b"cli").digest(200 * 1024))
    with serve_mirror() as served:
        served.add_model(NAME, zip_folder(folder, top=NAME))
        served.add_model(OTHER, zip_folder(folder, top=OTHER), lang="en-us", kind="big-lgraph", size=128_000_000)
        yield served


def test_download_shows_the_resume_and_list_shows_installed_and_available(mirror: Mirror, tmp_path: Path) -> None:
    models = tmp_path / "models"
    mirror.drops[f"/vosk/models/{NAME}.zip"] = 1
    env = {"CTI_MODELS_CATALOGUE": mirror.catalogue_url, "COLUMNS": "200"}

    ran = cti("models", "download", NAME, "--models-dir", str(models), env=env)
    assert f"{NAME} installed in {models / NAME}" in ran.stdout and "checksum verified" in ran.stdout
    assert "The connection dropped at" in ran.stderr and "resuming from there" in ran.stderr
    assert mirror.ranges(f"/vosk/models/{NAME}.zip")[-1] is not None

    broken = write_fake_vosk_model(models / "vosk-model-small-de-0.15")
    (broken / "graph" / "HCLG.fst").write_bytes((broken / "graph" / "HCLG.fst").read_bytes()[:40])
    listed = cti("models", "list", "--models-dir", str(models), env=env)
    installed, available = listed.stdout.split("Available", 1)
    assert NAME in installed and "OK" in installed
    assert "vosk-model-small-de-0.15" in installed and "broken" in installed and "graph/HCLG.fst is cut short" in (
        " ".join(installed.split()))
    assert OTHER in available and "128 MB" in available and "en-us" in available

    data = json.loads(cti("models", "list", "--models-dir", str(models), "--format", "json", env=env).stdout)
    assert [(m["name"], m["ok"]) for m in data["installed"]] == [("vosk-model-small-de-0.15", False), (NAME, True)]
    assert {m["name"]: m["installed"] for m in data["available"]} == {NAME: "yes", OTHER: ""}


def test_download_again_says_it_is_there(mirror: Mirror, tmp_path: Path) -> None:
    args = ("models", "download", NAME, "--models-dir", str(tmp_path), "--catalogue-url", mirror.catalogue_url)
    cti(*args)
    assert "already installed" in cti(*args).stdout


def test_a_stopped_download_resumes_on_the_next_run(mirror: Mirror, tmp_path: Path) -> None:
    from recognizer.models import DownloadError, download

    mirror.drops[f"/vosk/models/{NAME}.zip"] = 1
    with pytest.raises(DownloadError):
        download(NAME, tmp_path, catalogue_url=mirror.catalogue_url, attempts=1, retry_delay=0)
    ran = cti("models", "download", NAME, "--models-dir", str(tmp_path), "--catalogue-url", mirror.catalogue_url)
    assert f"Resuming the download of {NAME} at" in ran.stderr


def test_the_models_dir_comes_from_the_config(mirror: Mirror, tmp_path: Path) -> None:
    config = tmp_path / "cti.toml"
    config.write_text('[transcription]\nmodels_dir = "speech-models"\n')
    cti("models", "download", NAME, "--config", str(config), "--catalogue-url", mirror.catalogue_url)
    assert (tmp_path / "speech-models" / NAME / "am" / "final.mdl").is_file()


def test_refusals_are_one_line(mirror: Mirror, tmp_path: Path) -> None:
    unknown = cti("models", "download", "vosk-model-small-xx", "--models-dir", str(tmp_path),
                  "--catalogue-url", mirror.catalogue_url, check=False)
    assert unknown.returncode == 2 and "no model 'vosk-model-small-xx'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    nowhere = cti("models", "list", check=False, env={"CTI_CONFIG": ""})
    assert nowhere.returncode == 2 and "--models-dir" in nowhere.stderr
    bad_url = cti("models", "list", "--models-dir", str(tmp_path), "--catalogue-url", "file:///etc/passwd",
                  check=False)
    assert bad_url.returncode == 2 and "http(s) address" in bad_url.stderr
    mirror.add_model("vosk-model-small-tampered-0.1", b"PK not really", md5="1" * 32)
    tampered = cti("models", "download", "vosk-model-small-tampered-0.1", "--models-dir", str(tmp_path),
                   "--catalogue-url", mirror.catalogue_url, check=False)
    assert tampered.returncode == 1 and "does not match its md5" in tampered.stderr
    assert not (tmp_path / "vosk-model-small-tampered-0.1").exists()


def test_list_offline_without_a_copy_says_so(tmp_path: Path) -> None:
    ran = cti("models", "list", "--models-dir", str(tmp_path), "--offline",
              "--catalogue-url", "https://mirror.invalid/model-list.json")
    assert "No models installed" in ran.stdout
    assert "no copy of the model list" in ran.stderr
