"""The recording policy from the recorded traces: which answered call the daemon records, on which channel, into
which files, and which file of a finished call holds which side (cti/recording.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from asterisk.recording_files import RecordingSettings
from cti.context import enrich
from cti.effects import CallAnswered, CallEnded
from cti.model import CallBook, ModelConfig
from cti.recording import customer_channel, files_of, mixmonitor_request, recording_base, sources_of, wants_recording
from cti.records import CallRecord
from cti.transcripts import AudioSource
from tests.traces import TRACES, load_messages


def run(trace: str) -> tuple[list[CallAnswered], list[CallRecord]]:
    """The trace through the model and the context, as the daemon applies it: its answers and its journal rows."""
    book = CallBook(ModelConfig())
    answered: list[CallAnswered] = []
    ended: list[CallRecord] = []
    for msg in load_messages(TRACES / trace):
        for effect in enrich(book, book.apply(msg)):
            if isinstance(effect, CallAnswered):
                answered.append(effect)
            elif isinstance(effect, CallEnded):
                ended.append(effect.record)
    return answered, ended


def rules(**values: object) -> RecordingSettings:
    return RecordingSettings.model_validate(values)


def first_answer(trace: str) -> CallAnswered:
    answered, _ = run(trace)
    assert answered, f"{trace}: no call answered"
    return answered[0]


@pytest.mark.parametrize(("trace", "policy", "expected"), [
    ("11-ringgroup-answered", {"record": "all"}, True),
    ("11-ringgroup-answered", {"record": "inbound"}, True),
    ("11-ringgroup-answered", {}, False),  # never, by default: only the dialplan records
    ("11-ringgroup-answered", {"record": "never"}, False),
    ("18-internal-call", {"record": "inbound"}, False),
    ("18-internal-call", {"record": "all"}, True),
    ("16-click-to-call-answered", {"record": "inbound"}, False),
    ("07-queue-ringall-answered", {"record": "selected", "queues": ["support"]}, True),
    ("07-queue-ringall-answered", {"record": "selected", "queues": ["sales"]}, False),
    ("11-ringgroup-answered", {"record": "selected", "dids": ["74957654321"]}, True),
    ("11-ringgroup-answered", {"record": "selected", "dids": ["74951234567"], "queues": ["support"]}, False),
])
def test_the_policy_decides_on_answer(trace: str, policy: dict[str, object], expected: bool) -> None:
    answer = first_answer(trace)
    assert answer.context is not None
    assert wants_recording(answer.context, rules(**policy), recorded=False) is expected


def test_a_call_the_dialplan_records_is_adopted() -> None:
    answer = first_answer("01-direct-answered")
    assert answer.context is not None
    assert wants_recording(answer.context, rules(record="all"), recorded=True) is False


def test_the_daemon_records_on_the_customers_channel_into_split_files() -> None:
    answer = first_answer("11-ringgroup-answered")
    assert answer.context is not None
    request = mixmonitor_request(answer.context, "split")
    assert request is not None
    assert request.channel.startswith("PJSIP/trunk-")
    base = recording_base("main", answer.linkedid)
    assert base == f"cti-main-{answer.linkedid}"
    assert request.file == f"{base}-mix.wav"
    assert request.options == f"br({base}-in.wav)t({base}-out.wav)"
    assert request.files == (f"{base}-mix.wav", f"{base}-in.wav", f"{base}-out.wav")


@pytest.mark.parametrize(("layout", "file", "options"), [("stereo", "-stereo.wav", "bD"), ("mix", ".wav", "b")])
def test_stereo_and_mix_layouts(layout: str, file: str, options: str) -> None:
    answer = first_answer("11-ringgroup-answered")
    assert answer.context is not None
    request = mixmonitor_request(answer.context, layout)
    assert request is not None
    assert (request.file, request.options) == (f"cti-main-{answer.linkedid}{file}", options)


def test_an_internal_call_is_recorded_on_the_callers_channel() -> None:
    answer = first_answer("18-internal-call")
    assert answer.context is not None
    channel = customer_channel(answer.context)
    assert channel is not None and channel.uniqueid == answer.context.origin and channel.name.startswith("PJSIP/101-")


def test_a_hostile_linkedid_gives_a_safe_file_name() -> None:
    answer = first_answer("11-ringgroup-answered")
    assert answer.context is not None
    context = dataclasses.replace(answer.context, linkedid="../../etc/x\r\nAction: Logoff")
    request = mixmonitor_request(context, "mix")
    assert request is not None
    assert request.file == "cti-main-.._.._etc_x__Action__Logoff.wav"
    assert "/" not in request.options and "\r" not in request.options


def test_split_recording_of_the_dialplan_customer_in_agent_out() -> None:
    _, ended = run("34-stereo-recording")
    base = "20261124-004150-79161340034-1795480910.341"
    assert ended[0].recordings == (f"{base}.wav", f"{base}-in.wav", f"{base}-out.wav")
    assert sources_of(ended[0], rules()) == (AudioSource(f"{base}-in.wav", "customer"),
                                             AudioSource(f"{base}-out.wav", "agent"))
    # A dialplan that runs MixMonitor on the agent's channel: the sides swap.
    assert sources_of(ended[0], rules(dialplan_side="agent")) == (AudioSource(f"{base}-in.wav", "agent"),
                                                                  AudioSource(f"{base}-out.wav", "customer"))


def test_a_transferred_call_keeps_both_recordings() -> None:
    _, ended = run("35-blind-transfer-external")
    assert len(ended[0].recordings) == 2
    assert sources_of(ended[0], rules()) == tuple(AudioSource(n, "mono") for n in ended[0].recordings)


@pytest.mark.parametrize("trace", ["01-direct-answered", "07-queue-ringall-answered"])
def test_a_mix_is_mono(trace: str) -> None:
    _, ended = run(trace)
    assert sources_of(ended[0], rules()) == (AudioSource(ended[0].recordings[0], "mono"),)


def test_the_daemons_split_files_come_from_the_mix_the_journal_lists() -> None:
    _, ended = run("11-ringgroup-answered")
    assert ended[0].recordings == ()
    base = recording_base("main", ended[0].linkedid)
    record = dataclasses.replace(ended[0], recordings=(f"{base}-mix.wav",))
    assert files_of(record) == (f"{base}-mix.wav", f"{base}-in.wav", f"{base}-out.wav")
    # The daemon records on the customer's channel whatever the dialplan does.
    assert sources_of(record, rules(dialplan_side="agent")) == (AudioSource(f"{base}-in.wav", "customer"),
                                                                AudioSource(f"{base}-out.wav", "agent"))
    stereo = dataclasses.replace(ended[0], recordings=(f"{base}-stereo.wav",))
    assert sources_of(stereo, rules()) == (AudioSource(f"{base}-stereo.wav", "stereo", left="customer"),)


def test_an_unrecorded_call_has_no_sources() -> None:
    _, ended = run("18-internal-call")
    assert sources_of(ended[0], rules()) == ()


def test_traces_exist() -> None:
    assert isinstance(TRACES, Path) and (TRACES / "34-stereo-recording").is_dir()
