"""``[transcription]``: the engine and model per queue or DID (first match wins), keyword lists, refusals that say
what is wrong."""

from __future__ import annotations

import tomllib

import pytest

from asterisk.settings import ConfigError
from companion.config import parse_config
from cti.keywords import KeywordList
from cti.transcripts import EngineChoice
from recognizer.settings import TranscriptionSettings, choose_engine
from tests.store.builders import make_call

CONFIG = """
[transcription]
enabled = true
model = "vosk-model-small-ru-0.22"
language = "ru"

[[transcription.routes]]
queues = ["support-en"]
model = "vosk-model-small-en-us-0.15"
language = "en"

[[transcription.routes]]
dids = ["+7 (495) 123-45-00", "74951234501"]
engine = "whisper"
model = "/opt/models/whisper-base"

[transcription.keywords]
complaint = ["жалоба", "верните деньги"]
competitors = { phrases = ["автомир"], speaker = "customer" }
"""


def _settings(text: str = CONFIG) -> TranscriptionSettings:
    return parse_config(tomllib.loads(text)).transcription


def test_the_first_route_that_matches_a_call_chooses_its_engine_and_model() -> None:
    settings = _settings()
    english = make_call("1.1", answered=True, queue="support-en", did="74951234500")
    assert choose_engine(english, settings) == EngineChoice("vosk", "vosk-model-small-en-us-0.15", "en")
    by_did = make_call("1.2", answered=True, did="74951234500")  # the DID written either way
    assert choose_engine(by_did, settings) == EngineChoice("whisper", "/opt/models/whisper-base", None)
    other = make_call("1.3", answered=True, queue="support", did="74950000001")
    assert choose_engine(other, settings) == EngineChoice("vosk", "vosk-model-small-ru-0.22", "ru")


def test_keyword_lists_as_arrays_or_tables() -> None:
    assert _settings().keyword_lists() == (
        KeywordList("complaint", ("жалоба", "верните деньги")),
        KeywordList("competitors", ("автомир",), "customer"))


def test_relative_folders_are_the_config_files() -> None:
    settings = _settings(CONFIG.replace('language = "ru"\n', 'language = "ru"\nspeaker_model = "spk"\n', 1))
    assert settings.models_dir.is_absolute() and settings.speaker_model is not None
    assert settings.speaker_model.is_absolute() and settings.speaker_model.name == "spk"
    assert settings.model_path(EngineChoice(model="m")) == settings.models_dir / "m"


@pytest.mark.parametrize(("text", "said"), [
    ("[transcription]\nenabled = true\n", "give the default model"),
    ('[transcription]\nmodel = "m"\n[[transcription.routes]]\nmodel = "x"\n', "a route names the calls it is for"),
    ('[transcription]\nmodel = "m"\n[transcription.keywords]\ncomplaint = []\n', "is empty"),
    ('[transcription]\nmodel = "m"\n[transcription.keywords]\n"bad name!" = ["x"]\n', "keyword list name"),
    ('[transcription]\nmodel = "m"\n[transcription.keywords]\nx = ["..."]\n', "has no word in it"),
    ('[transcription]\nmodel = "m"\nworkers = 0\n', "transcription.workers"),
    ('[transcription]\nmodel = "m"\nengine = "cloud"\n', "transcription.engine"),
])
def test_a_bad_section_is_refused_with_what_is_wrong(text: str, said: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(tomllib.loads(text))
    assert said in str(caught.value)


def test_the_whisper_run_options_reach_the_worker_and_a_wrong_device_is_refused() -> None:
    """A site with a GPU says so once in ``[transcription.whisper]``; every job's spec carries it to the worker."""
    from companion.config import Settings
    from companion.transcriber import job_spec
    from cti.transcripts import AudioSource, TranscriptionJob

    text = CONFIG + '\n[transcription.whisper]\ndevice = "cuda"\ncompute_type = "float16"\ncpu_threads = 4\n'
    settings: Settings = parse_config(tomllib.loads(text))
    job = TranscriptionJob(id=1, pbx="main", linkedid="1.1", sources=(AudioSource("a.wav", "mono"),),
                           choice=EngineChoice("whisper", "/opt/models/whisper-base"), call_started_at=0.0,
                           state="running", attempts=1, queued_at=0.0)
    spec = job_spec(job, settings)
    assert spec.whisper is not None
    assert (spec.whisper.device, spec.whisper.compute_type, spec.whisper.cpu_threads) == ("cuda", "float16", 4)
    with pytest.raises(ConfigError, match="device"):
        parse_config(tomllib.loads(CONFIG + '\n[transcription.whisper]\ndevice = "tpu"\n'))
