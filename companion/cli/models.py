"""``cti models list|download``: the speech models in the models folder, the official list, a verified download.

The models folder is ``--models-dir``, else ``[transcription] models_dir`` of ``--config`` (relative to the config
file). ``list`` shows each installed folder with the verdict the recogniser will give it at load (OK, or broken and
why: :mod:`recognizer.model_check`), then the models of the official list (``--offline``: only the copy kept from the
last fetch). ``download NAME`` fetches one with a progress bar (bytes, speed, time left), resumes a part file left by
an earlier run or a dropped connection, verifies the checksum and installs it in one step
(:mod:`recognizer.models`). The official list's address can be replaced (``--catalogue-url`` or
``CTI_MODELS_CATALOGUE``): a local mirror for a site whose daemon has no internet.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from companion.output import Format, emit

from .app import app
from .errors import fail
from .options import FormatOpt, SubConfigOpt

if TYPE_CHECKING:
    from recognizer.models import Catalogue

models_app = typer.Typer(help="Speech models: the installed ones, the official list, a verified download.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")

ModelsDirOpt = Annotated[Path | None, typer.Option("--models-dir", help="the models folder (default: [transcription] "
                                                   "models_dir of --config)", file_okay=False)]
CatalogueOpt = Annotated[str | None, typer.Option("--catalogue-url", envvar="CTI_MODELS_CATALOGUE",
                                                  help="the model list's address (default: Alpha Cephei's)")]

INSTALLED_COLUMNS = (("name", "Installed"), ("kind", "Kind"), ("lang", "Lang"), ("size", "Size"),
                     ("status", "Status"))
CSV_COLUMNS = (("section", "section"), ("name", "name"), ("kind", "kind"), ("lang", "lang"), ("bytes", "bytes"),
               ("status", "status"))
AVAILABLE_COLUMNS = (("name", "Available"), ("lang", "Lang"), ("type", "Type"), ("size", "Size"),
                     ("installed", "Installed"))


def _models_dir(config: Path | None, given: Path | None) -> Path:
    if given is not None:
        return given
    if config is None:
        fail("give the models folder: --models-dir DIR, or --config FILE with [transcription] models_dir")
    from companion.config import ConfigError, load_config

    try:  # not settings_from: listing models needs no AMI secret
        settings = load_config(config)
    except ConfigError as exc:
        fail(str(exc))
    return settings.transcription.models_dir


def _catalogue_url(given: str | None) -> str:
    from recognizer.models import DEFAULT_CATALOGUE_URL

    url = given or DEFAULT_CATALOGUE_URL
    if not url.startswith(("https://", "http://")) or len(url) > 2000 or not url.isprintable():
        fail(f"--catalogue-url must be an http(s) address, not {url!r}")
    return url


def human_size(size: int) -> str:
    """Bytes as people read them: 1.8 GB, 45 MB, 900 kB."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit in ("B", "kB") or value >= 100 else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # pragma: no cover - the loop always returns


def _reason(problem: str | None, path: Path) -> str:
    """A model's problem without the folder it names (the table's row already does)."""
    return (problem or "").split(f"{path}: ", 1)[-1]


@models_app.command("list")
def list_command(
    config: SubConfigOpt = None,
    models_dir: ModelsDirOpt = None,
    catalogue_url: CatalogueOpt = None,
    offline: Annotated[bool, typer.Option(help="do not fetch the list: the copy kept from the last fetch")] = False,
    lang: Annotated[str | None, typer.Option(help="only the available models of this language: ru, en-us, …")] = None,
    obsolete: Annotated[bool, typer.Option(help="include the models the list marks obsolete")] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """The installed models (OK, or broken and why) and the models of the official list."""
    from recognizer.models import ModelsError, available, installed

    folder = _models_dir(config, models_dir)
    url = _catalogue_url(catalogue_url)
    catalogue: Catalogue | None = None
    note = ""
    try:
        catalogue = available(folder, url=url, offline=offline)
        if catalogue.stale:
            note = f"the model list could not be fetched ({catalogue.stale}): showing the copy kept from before"
    except ModelsError as exc:
        note = str(exc)
    local = installed(folder, catalogue)
    names = {m.name for m in local if m.ok}
    installed_rows = [{"name": m.name, "kind": m.kind or "?", "lang": m.lang, "size": human_size(m.size),
                       "bytes": m.size, "status": "OK" if m.ok else f"broken: {_reason(m.problem, m.path)}", "ok": m.ok,
                       "path": str(m.path)} for m in local]
    offered = [] if catalogue is None else [
        m for m in catalogue.models
        if (obsolete or not m.obsolete) and (lang is None or m.lang.lower() == lang.lower())]
    available_rows = [{"name": m.name, "lang": m.lang, "type": m.type, "size": human_size(m.size) if m.size else "?",
                       "bytes": m.size, "installed": "yes" if m.name in names else "", "url": m.url}
                      for m in offered]
    if fmt is Format.json:
        import json

        typer.echo(json.dumps({"models_dir": str(folder), "installed": installed_rows, "available": available_rows,
                               "note": note or None}, ensure_ascii=False, indent=1))
    elif fmt is Format.csv:
        emit([{**row, "section": "installed"} for row in installed_rows]
             + [{**row, "section": "available", "kind": "", "status": ""} for row in available_rows],
             fmt, CSV_COLUMNS, "Models")
    else:
        if installed_rows:
            emit(installed_rows, fmt, INSTALLED_COLUMNS, f"Installed in {folder}")
        else:
            typer.echo(f"No models installed in {folder} yet.")
        if available_rows:
            emit(available_rows, fmt, AVAILABLE_COLUMNS, "Available")
    if note:
        typer.echo(f"cti: {note}", err=True)


@models_app.command("download")
def download_command(
    name: Annotated[str, typer.Argument(metavar="NAME", help="a model of `cti models list`: vosk-model-small-ru-0.22")],
    config: SubConfigOpt = None,
    models_dir: ModelsDirOpt = None,
    catalogue_url: CatalogueOpt = None,
) -> None:
    """Download a model of the official list into the models folder: resumable, its checksum verified."""
    from recognizer.models import DownloadError, ModelsError, UnknownModel, download

    folder = _models_dir(config, models_dir)
    url = _catalogue_url(catalogue_url)
    with _Bar(name) as bar:
        try:
            report = download(name, folder, bar, catalogue_url=url)
        except UnknownModel as exc:
            bar.stop()
            fail(str(exc))
        except DownloadError as exc:
            bar.stop()
            fail(str(exc), 1)
        except ModelsError as exc:
            bar.stop()
            fail(str(exc), 1)
    if report.already_installed:
        typer.echo(f"{name} is already installed in {report.model.path} (and whole).")
        return
    typer.echo(f"{name} installed in {report.model.path} ({human_size(report.model.size)}), checksum verified.")


class _Bar:
    """:class:`recognizer.models.Progress` drawn with rich: bytes, speed and time left; a resume said in words."""

    def __init__(self, name: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.name = name
        self.console = Console(stderr=True)
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                            TimeRemainingColumn(), console=self.console, transient=False)
        self.task = self.bar.add_task(name, total=None, start=False)
        self.started_once = False

    def __enter__(self) -> _Bar:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.bar.stop()

    def started(self, total: int | None, done: int) -> None:
        if done and not self.started_once:
            self.console.print(f"Resuming the download of {self.name} at {human_size(done)}"
                               + (f" of {human_size(total)}" if total else ""))
        self.started_once = True
        self.bar.update(self.task, total=total, completed=done)
        self.bar.start_task(self.task)

    def advanced(self, nbytes: int) -> None:
        self.bar.advance(self.task, nbytes)

    def retrying(self, done: int, reason: str) -> None:
        self.console.print(f"The connection dropped at {human_size(done)} ({reason}): resuming from there")

    def stage(self, text: str) -> None:
        self.bar.update(self.task, description=f"{self.name}: {text}")
