"""The sans-I/O AMI framer: every recorded byte stream, however it is cut, gives the recorded messages."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from asterisk.messages import AmiMessage, FrameError, action
from asterisk.protocol import AmiClientProtocol, AmiFramer
from tests.traces import trace_dirs

#: Every test here runs with the C framer and with the pure-Python one (tests/asterisk/conftest.py).
pytestmark = pytest.mark.usefixtures("framer_impl")


def recorded_messages(trace: Path) -> list[list[tuple[str, str]]]:
    out = []
    for line in (trace / "ami.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if isinstance(item.get("msg"), list):
            out.append([(k, v) for k, v in item["msg"]])
    return out


def feed(chunks: list[bytes]) -> tuple[AmiFramer, list[AmiMessage | FrameError]]:
    framer = AmiFramer(expect_banner=True)
    got: list[AmiMessage | FrameError] = []
    for chunk in chunks:
        framer.receive_data(chunk)
        got.extend(framer.events_received())
    return framer, got


def cut(raw: bytes, how: str, seed: int = 7) -> list[bytes]:
    if how == "whole":
        return [raw]
    if how == "bytes":
        return [raw[i : i + 1] for i in range(len(raw))]
    rng = random.Random(seed)
    chunks, i = [], 0
    while i < len(raw):
        n = rng.randint(1, 200)
        chunks.append(raw[i : i + n])
        i += n
    return chunks


@pytest.mark.parametrize("how", ["whole", "bytes", "random"])
@pytest.mark.parametrize("trace", trace_dirs(), ids=lambda p: p.name)
def test_every_trace_parses_to_its_recorded_messages(trace: Path, how: str) -> None:
    """Duplicate keys kept, Cyrillic intact, however the TCP reads were cut."""
    raw = (trace / "ami.raw").read_bytes()
    framer, got = feed(cut(raw, how))
    assert framer.banner == "Asterisk Call Manager/11.0.0"
    assert [m.headers for m in got if isinstance(m, AmiMessage)] == recorded_messages(trace)
    assert not [m for m in got if isinstance(m, FrameError)]


def test_cyrillic_name_split_inside_a_character_survives() -> None:
    """A 2-byte UTF-8 letter cut between two reads is decoded whole (panoramisk loses it)."""
    frame = "Event: Newchannel\r\nCallerIDName: Кузьмин Алексей\r\n\r\n".encode()
    split = frame.index("Кузьмин".encode()) + 1  # in the middle of 'К'
    _, got = feed([b"Asterisk Call Manager/11.0.0\r\n", frame[:split], frame[split:]])
    assert isinstance(got[0], AmiMessage) and got[0]["CallerIDName"] == "Кузьмин Алексей"


def test_oversized_frame_is_skipped_and_the_stream_goes_on() -> None:
    framer = AmiFramer(expect_banner=False, max_frame_size=1024)
    framer.receive_data(b"Event: Big\r\nData: " + b"x" * 5000)
    framer.receive_data(b"y" * 3000 + b"\r\n\r\nEvent: Next\r\nUniqueid: 1.2\r\n\r\n")
    got = framer.events_received()
    assert isinstance(got[0], FrameError) and got[0].reason == "oversized frame"
    assert [m.event for m in got if isinstance(m, AmiMessage)] == ["Next"]


def test_frame_without_headers_is_an_error_not_an_exception() -> None:
    framer = AmiFramer(expect_banner=False)
    framer.receive_data(b"garbage without colon\r\n\r\nEvent: Ok\r\n\r\n")
    got = framer.events_received()
    assert isinstance(got[0], FrameError) and got[0].reason == "no header line"
    assert isinstance(got[1], AmiMessage) and got[1].event == "Ok"


def test_eof_inside_a_frame_drops_only_that_frame() -> None:
    framer = AmiFramer(expect_banner=False)
    framer.receive_data(b"Event: A\r\n\r\nEvent: B\r\nChan")
    framer.receive_eof()
    assert [m.event for m in framer.events_received() if isinstance(m, AmiMessage)] == ["A"]


def test_bare_lf_terminators_are_accepted() -> None:
    framer = AmiFramer(expect_banner=False)
    framer.receive_data(b"Event: A\nUniqueid: 1\n\nEvent: B\n\n")
    assert [m.event for m in framer.events_received() if isinstance(m, AmiMessage)] == ["A", "B"]


def test_actions_get_ids_and_keep_repeated_keys() -> None:
    proto = AmiClientProtocol()
    first = proto.send_action(action("Originate", ("Variable", "A=1"), ("Variable", "B=2"), Channel="PJSIP/101"))
    second = proto.send_action(action("Ping"))
    assert first != second
    wire = b"".join(proto.data_to_send())
    framer = AmiFramer(expect_banner=False)
    framer.receive_data(wire)
    msgs = [m for m in framer.events_received() if isinstance(m, AmiMessage)]
    assert msgs[0].get_all("Variable") == ["A=1", "B=2"] and msgs[0].action_id == first
    assert msgs[1].action == "Ping"
