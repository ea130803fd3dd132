"""The framer's edges: however the PBX's bytes are cut into reads, the messages are those of the frames.

:func:`asterisk.protocol.parse_frame` (line by line) is the reference; the framer's fast path (whole reads
decoded and split at once) must give the very same message for every frame, odd ones included, wherever
the reads are cut: inside a UTF-8 character, inside the ``CRLF CRLF`` terminator, one byte at a time.
"""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asterisk.messages import AmiMessage, FrameError, message_from_index
from asterisk.protocol import AmiFramer, parse_frame

#: Every test here runs with the C framer and with the pure-Python one (tests/asterisk/conftest.py).
pytestmark = pytest.mark.usefixtures("framer_impl")

#: Bounded and reproducible: CI always draws the same examples; nothing is written to disk.
PROPERTY = settings(max_examples=300, deadline=None, database=None,
                    derandomize=os.environ.get("CI", "").lower() == "true",
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

END = b"\r\n\r\n"

#: A realistic event: Cyrillic, an empty value, a value with ": " in it, a repeated key.
EVENT = (
    "Event: Newchannel\r\nPrivilege: call,all\r\nChannel: PJSIP/101-00000001\r\nCallerIDNum: 101\r\n"
    "CallerIDName: Кузьмин Алексей\r\nAccountCode: \r\nAppData: Dial: PJSIP/102\r\n"
    "ChanVariable: A=1\r\nChanVariable: B=2\r\nUniqueid: 1795479360.12\r\n\r\n"
).encode()


def outcome(item: AmiMessage | FrameError) -> tuple[object, ...]:
    """What a user of the framer sees of one item."""
    if isinstance(item, FrameError):
        return ("error", item.reason, item.size, item.excerpt)
    return ("message", item.headers, item.received_at, item.event, dict(item.fields))


def framed(chunks: list[bytes], *, max_frame_size: int = 64 * 1024, banner: bool = False) -> list[tuple[object, ...]]:
    framer = AmiFramer(expect_banner=banner, max_frame_size=max_frame_size)
    got: list[AmiMessage | FrameError] = []
    for chunk in chunks:
        framer.receive_data(chunk, 7.0)
        got.extend(framer.events_received())
    return [outcome(m) for m in got]


def reference(frames: list[bytes]) -> list[tuple[object, ...]]:
    return [outcome(parse_frame(f, 7.0)) for f in frames]


def cut_at(data: bytes, offsets: list[int]) -> list[bytes]:
    bounds = [0, *sorted({min(max(o, 0), len(data)) for o in offsets}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# -- every cut -------------------------------------------------------------------------------------------

def test_a_frame_cut_in_two_at_every_byte_gives_the_same_message() -> None:
    """Including inside 'К' (two bytes) and between the CR LF CR LF of the terminator."""
    frame = EVENT[: -len(END)]
    want = reference([frame])
    assert want[0][0] == "message"
    for k in range(len(EVENT) + 1):
        assert framed([EVENT[:k], EVENT[k:]]) == want, f"cut at byte {k}"


def test_three_frames_cut_in_two_at_every_byte() -> None:
    second = b"Event: Hangup\r\nUniqueid: 1795479360.12\r\nCause: 16\r\n\r\n"
    data = EVENT + second + EVENT
    want = reference([EVENT[:-4], second[:-4], EVENT[:-4]])
    for k in range(len(data) + 1):
        assert framed([data[:k], data[k:]]) == want, f"cut at byte {k}"


def test_one_byte_per_read_and_one_read_for_all_agree() -> None:
    data = (EVENT + b"Response: Success\r\nActionID: cti-1\r\nMessage: Pong\r\n\r\n") * 3
    assert framed([data[i : i + 1] for i in range(len(data))]) == framed([data])
    assert [o[3] for o in framed([data])] == ["Newchannel", "", "Newchannel", "", "Newchannel", ""]


def test_the_banner_and_the_first_frame_cut_anywhere() -> None:
    data = b"Asterisk Call Manager/11.0.0\r\n" + EVENT
    for k in range(len(data) + 1):
        framer = AmiFramer(expect_banner=True)
        for chunk in (data[:k], data[k:]):
            framer.receive_data(chunk, 7.0)
        got = framer.events_received()
        assert framer.banner == "Asterisk Call Manager/11.0.0"
        assert [outcome(m) for m in got] == reference([EVENT[:-4]]), f"cut at byte {k}"


def test_bare_lf_frames_cut_at_every_byte() -> None:
    """A peer ending its lines with LF alone (not Asterisk, but accepted)."""
    data = b"Event: A\nUniqueid: 1\n\nEvent: B\nCallerIDName: \xd0\x9a\n\n"
    want = reference([b"Event: A\nUniqueid: 1", b"Event: B\nCallerIDName: \xd0\x9a"])
    for k in range(len(data) + 1):
        assert framed([data[:k], data[k:]]) == want, f"cut at byte {k}"


# -- the fast path agrees with the line-by-line reference ---------------------------------------------------

_KEYS = st.sampled_from(["Event", "Channel", "Uniqueid", "Variable", "ChanVariable", "Output", "Exten", "A:B",
                         "Key With Space", "", "Х"])
_VALUE_PARTS = st.sampled_from([b"x", b"101", b" ", b": ", b":", b"=", b"\xd0\x9a", b"\xd0", b"\x9a", b"\x00",
                                b"\r", b"\n", b"<unknown>", b"Dial: PJSIP/102", b"\xe2\x80\xa8"])
_LINE = st.one_of(
    st.builds(lambda k, v: k.encode() + b": " + b"".join(v), _KEYS, st.lists(_VALUE_PARTS, max_size=6)),
    st.lists(_VALUE_PARTS, min_size=1, max_size=6).map(b"".join),  # a bare line (legacy Command output)
)


def _frame(lines: list[bytes]) -> bytes:
    return b"\r\n".join(lines)


def _sane(frame: bytes) -> bool:
    """A frame as a stream can carry it: no blank line in it (that would end it), not blank itself, no LF LF
    (which ends a bare-LF peer's frame), and not ending in CR or LF (which would run into its terminator)."""
    return (bool(frame.strip(b"\r\n")) and END not in frame and b"\n\n" not in frame
            and not frame.endswith((b"\r", b"\n")) and not frame.startswith((b"\r", b"\n")))


_FRAMES = st.lists(st.lists(_LINE, min_size=1, max_size=8).map(_frame).filter(_sane), min_size=1, max_size=6)


@PROPERTY
@given(frames=_FRAMES, offsets=st.lists(st.integers(min_value=0, max_value=2000), max_size=8))
def test_any_frames_cut_anywhere_give_what_the_line_parser_gives(frames: list[bytes], offsets: list[int]) -> None:
    """Repeated keys, bare lines, keys with a space or empty, ': ' inside values, lone CR or LF, invalid UTF-8."""
    data = b"".join(f + END for f in frames)
    assert framed(cut_at(data, offsets)) == reference(frames)


@PROPERTY
@given(frames=_FRAMES, offsets=st.lists(st.integers(min_value=0, max_value=2000), max_size=8),
       limit=st.integers(min_value=8, max_value=120))
def test_oversized_frames_are_refused_and_the_rest_still_arrive(
        frames: list[bytes], offsets: list[int], limit: int) -> None:
    """A frame over the limit is one error, wherever the reads are cut; every frame within it is intact."""
    data = b"".join(f + END for f in frames)
    got = framed(cut_at(data, offsets), max_frame_size=limit)
    want = [("oversized",) if len(f) > limit else outcome(parse_frame(f, 7.0)) for f in frames]
    assert [("oversized",) if g[:2] == ("error", "oversized frame") else g for g in got] == want


# -- limits and blank lines ---------------------------------------------------------------------------------

@pytest.mark.parametrize("reads", ["whole", "bytes"])
def test_a_frame_of_exactly_the_limit_is_accepted_and_one_byte_more_is_not(reads: str) -> None:
    """Even when the read stops inside the terminator, with the frame's bytes plus three buffered."""
    at_limit = b"Event: A\r\nData: " + b"x" * 100
    over = at_limit + b"y"
    data = at_limit + END + over + END + b"Event: Next\r\n\r\n"
    chunks = [data] if reads == "whole" else [data[i : i + 1] for i in range(len(data))]
    got = framed(chunks, max_frame_size=len(at_limit))
    assert [g[:2] for g in got] == [("message", [("Event", "A"), ("Data", "x" * 100)]),
                                    ("error", "oversized frame"), ("message", [("Event", "Next")])]


def test_after_an_oversized_frame_a_terminator_cut_by_the_read_still_ends_it() -> None:
    """The next frame is not swallowed with the refused one when CR LF | CR LF straddles two reads."""
    got = framed([b"Event: Big\r\nData: " + b"x" * 3000 + b"\r\n", b"\r\nEvent: Next\r\nUniqueid: 1.2\r\n\r\n"],
                 max_frame_size=1024)
    assert [g[:2] for g in got] == [("error", "oversized frame"), ("message", [("Event", "Next"), ("Uniqueid", "1.2")])]


def test_an_oversized_frame_in_the_middle_of_a_read_is_measured_in_bytes() -> None:
    """4,000 bytes of Cyrillic are 2,000 characters: still over a 3,000-byte limit."""
    big = b"Event: Big\r\nData: " + "Ж".encode() * 2000
    got = framed([EVENT + big + END + EVENT], max_frame_size=3000)
    assert [g[0] for g in got] == ["message", "error", "message"]
    assert got[1][1:3] == ("oversized frame", len(big))


def test_blank_lines_between_frames_are_skipped_without_errors() -> None:
    for blank in (b"", b"\r\n", b"\r\n\r\n", b"\r\n\r\n\r\n", b"\r\n" * 7):
        data = EVENT + blank + EVENT
        assert framed([data]) == framed([data[i : i + 1] for i in range(len(data))]) == reference(
            [EVENT[:-4], EVENT[:-4]]), blank


def test_a_frame_without_any_header_is_an_error_and_the_next_one_arrives() -> None:
    got = framed([b"garbage without colon\r\nmore\r\n\r\n" + EVENT])
    assert got[0] == ("error", "no header line", 27, "garbage without colon\r\nmore")
    assert got[1][0] == "message"


# -- the message the fast path builds -----------------------------------------------------------------------

def test_repeated_keys_keep_every_value_in_order_and_the_first_wins_a_lookup() -> None:
    framer = AmiFramer(expect_banner=False)
    framer.receive_data(EVENT)
    (msg,) = framer.events_received()
    assert isinstance(msg, AmiMessage)
    assert msg.get("ChanVariable") == msg["ChanVariable"] == msg.fields["ChanVariable"] == "A=1"
    assert msg.get_all("ChanVariable") == ["A=1", "B=2"]
    assert msg.get("AppData") == "Dial: PJSIP/102" and msg.get("AccountCode") == "" and "AccountCode" in msg
    assert msg.get("CallerIDName") == "Кузьмин Алексей"
    assert msg.event == "Newchannel" and msg.get("Missing", "-") == "-"


def test_a_message_from_the_fast_path_equals_one_built_from_its_headers() -> None:
    frame = b"Event: Hangup\r\nUniqueid: 1795479360.12\r\nCause: 16\r\nTimestamp: 1795479361.500000"
    framer = AmiFramer(expect_banner=False)
    framer.receive_data(frame + END, 3.0)
    (fast,) = framer.events_received()
    assert isinstance(fast, AmiMessage)
    built = AmiMessage(headers=[("Event", "Hangup"), ("Uniqueid", "1795479360.12"), ("Cause", "16"),
                                ("Timestamp", "1795479361.500000")], received_at=3.0)
    assert fast == built and repr(fast) == repr(built) and str(fast) == str(built) == "<Hangup Uniqueid=1795479360.12>"
    assert fast.time == 1795479361.5 and fast.serialize() == frame + END
    assert message_from_index({"Event": "X"}, 1.0) == AmiMessage(headers=[("Event", "X")], received_at=1.0)
