"""``[transcription]``: whether calls are transcribed, by how many worker processes, with which engine and model.

A site turns transcription on once it has a model (``enabled``, off by default: the daemon does not load hundreds of
MB it was not asked for). The model is chosen per call (:func:`choose_engine`): the first ``[[transcription.routes]]``
entry whose queues or DIDs the call went through, else the default ``engine``/``model``/``language``; a Russian model
for the Russian lines, an English one for the others. ``[transcription.keywords]`` names lists of words and phrases
(complaint words, competitors' names) a transcript is flagged for (``cti/keywords.py``).

Each package owns its section's model (``docs/architecture.md``); ``companion/config.py`` puts it in ``Settings``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from asterisk.settings import Section, ami_text_problem
from cti.keywords import KeywordList
from cti.records import CallRecord
from cti.transcripts import EngineChoice, EngineName, Speaker

#: A keyword list's name: it is what ``call.flagged`` and the search's flag filter carry.
_LIST_NAME = re.compile(r"[0-9A-Za-zА-Яа-яЁё_.\-]{1,40}")
#: A language code (``ru``, ``en``): what the engine is told and the transcript records.
Language = Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]
#: Phrases a list may hold, and the length of one: enough for any centre, bounded for the matcher.
MAX_PHRASES = 500
MAX_PHRASE = 200


def _one_line(value: str, what: str) -> str:
    problem = ami_text_problem(value)
    if problem is not None:
        raise ValueError(f"{what} {value!r} {problem}")
    return value


class TranscriptionRoute(Section):
    """``[[transcription.routes]]``: the engine and model for the calls of some queues or DIDs (first match wins)."""

    #: Queues (their names in queues.conf) whose calls this route transcribes.
    queues: tuple[str, ...] = ()
    #: Dialled numbers (DIDs) whose calls this route transcribes, as the PBX reports them (digits compared).
    dids: tuple[str, ...] = ()
    engine: EngineName = "vosk"
    #: A model folder name under ``models_dir`` (``vosk-model-small-en-us-0.15``), or an absolute path.
    model: Annotated[str, Field(min_length=1, max_length=255)]
    language: Language | None = None

    @field_validator("queues", "dids", "model")
    @classmethod
    def _text(cls, value: tuple[str, ...] | str) -> tuple[str, ...] | str:
        for item in (value,) if isinstance(value, str) else value:
            if not item.strip():
                raise ValueError("must not be empty")
            _one_line(item, "the name")
        return value

    @model_validator(mode="after")
    def _says_which_calls(self) -> TranscriptionRoute:
        if not self.queues and not self.dids:
            raise ValueError("a route names the calls it is for: queues = [...] and/or dids = [...]")
        return self

    def matches(self, record: CallRecord) -> bool:
        """Whether the call went through one of this route's queues or came in on one of its DIDs."""
        if record.queue is not None and record.queue in self.queues:
            return True
        did = _digits(record.did or (record.called if record.direction == "inbound" else None))
        return bool(did) and did in {_digits(d) for d in self.dids}


class KeywordListSettings(Section):
    """A keyword list written as a table: ``complaint = { phrases = ["жалоба"], speaker = "customer" }``."""

    phrases: tuple[str, ...]
    #: Only words said by this side count (``customer``: a complaint is the customer's); absent: either side.
    speaker: Speaker | None = None


class WhisperSettings(Section):
    """``[transcription.whisper]``: how faster-whisper runs, for the calls a route gives ``engine = "whisper"``.

    The defaults suit a CPU-only server (one thread per worker, 8-bit weights); a site with an NVIDIA GPU sets
    ``device = "cuda"`` and ``compute_type = "float16"`` (``docs/transcription.md``, Whisper).
    """

    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compute_type: Literal["default", "int8", "int8_float16", "int8_float32", "float16", "float32"] = "int8"
    #: CPU threads per worker process (0: CTranslate2 decides); the pool's ``workers`` multiply it.
    cpu_threads: Annotated[int, Field(ge=0, le=64)] = 1
    beam_size: Annotated[int, Field(ge=1, le=10)] = 5


class TranscriptionSettings(Section):
    """``[transcription]``: the recogniser's queue, workers, models and keyword lists (``docs/transcription.md``)."""

    #: Transcribe answered calls with recordings (a job per call, queued in the store at the call's end).
    enabled: bool = False
    #: Worker processes (each loads its models once: a Vosk model costs hundreds of MB and seconds to load).
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    #: The folder of the models (``cti models download`` puts them there); relative: to the config file.
    models_dir: Path = Path("models")
    #: The default engine, model (a folder name under ``models_dir``, or an absolute path) and language.
    engine: EngineName = "vosk"
    model: Annotated[str, Field(max_length=255)] = ""
    language: Language | None = None
    #: Per queue or DID, another engine/model/language; the first route that matches a call wins.
    routes: tuple[TranscriptionRoute, ...] = ()
    #: Tries of a job before it is marked failed (a worker that died, a model that could not load...).
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 3
    #: How long a taken job is a runner's before another may take it (the runner keeps renewing it while it runs):
    #: after a crash of the daemon, its running jobs are taken again this long after their last renewal.
    lease_seconds: Annotated[float, Field(ge=1, le=86400)] = 120.0
    #: The speaker model (``vosk-model-spk-0.4``) that tells agent and customer apart in mono recordings; absent:
    #: a mono recording's words are ``unknown`` unless the call's facts say who spoke.
    speaker_model: Path | None = None
    #: Named keyword lists a transcript is flagged for: ``complaint = ["жалоба", "верните деньги"]`` (either side) or
    #: ``competitors = { phrases = ["автодом"], speaker = "customer" }``.
    keywords: dict[str, tuple[str, ...] | KeywordListSettings] = Field(default_factory=dict)
    whisper: WhisperSettings = WhisperSettings()

    @field_validator("model")
    @classmethod
    def _model_name(cls, value: str) -> str:
        return _one_line(value, "the model")

    @field_validator("keywords")
    @classmethod
    def _keyword_lists(cls, value: dict[str, tuple[str, ...] | KeywordListSettings]
                       ) -> dict[str, tuple[str, ...] | KeywordListSettings]:
        for name, entry in value.items():
            if _LIST_NAME.fullmatch(name) is None:
                raise ValueError(f"the keyword list name {name!r} must be 1 to 40 letters, digits, '_', '-' or '.'")
            phrases = entry.phrases if isinstance(entry, KeywordListSettings) else entry
            if not phrases:
                raise ValueError(f"the keyword list {name!r} is empty")
            if len(phrases) > MAX_PHRASES:
                raise ValueError(f"the keyword list {name!r} has more than {MAX_PHRASES} phrases")
            for phrase in phrases:
                _one_line(phrase, f"the keyword list {name!r}: the phrase")
                if not phrase.strip() or len(phrase) > MAX_PHRASE:
                    raise ValueError(f"the keyword list {name!r}: a phrase must be 1 to {MAX_PHRASE} characters, "
                                     f"not {phrase!r}")
                if not any(ch.isalnum() for ch in phrase):
                    raise ValueError(f"the keyword list {name!r}: the phrase {phrase!r} has no word in it")
        return value

    @model_validator(mode="after")
    def _has_a_model(self) -> TranscriptionSettings:
        if self.enabled and not self.model:
            raise ValueError("with enabled = true give the default model: model = \"vosk-model-small-ru-0.22\" (a "
                             "folder under models_dir; `cti models list` shows them)")
        return self

    def keyword_lists(self) -> tuple[KeywordList, ...]:
        """The lists as ``cti/keywords.py`` matches them, in the file's order."""
        return tuple(
            KeywordList(name, entry.phrases, entry.speaker) if isinstance(entry, KeywordListSettings)
            else KeywordList(name, tuple(entry))
            for name, entry in self.keywords.items())

    def default_choice(self) -> EngineChoice:
        return EngineChoice(self.engine, self.model, self.language)

    def model_path(self, choice: EngineChoice) -> Path:
        """The folder of ``choice``'s model: an absolute path as given, else under ``models_dir``."""
        path = Path(choice.model)
        return path if path.is_absolute() else self.models_dir / path


def choose_engine(record: CallRecord, settings: TranscriptionSettings) -> EngineChoice:
    """The engine, model and language for ``record``'s call: the first route whose queues or DIDs it went through,
    else the default. Pure: the same call always gets the same choice (the job keeps it)."""
    for route in settings.routes:
        if route.matches(record):
            return EngineChoice(route.engine, route.model, route.language)
    return settings.default_choice()


def _digits(number: str | None) -> str:
    return "".join(ch for ch in number or "" if ch.isdigit())
