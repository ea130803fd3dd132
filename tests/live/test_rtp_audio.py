"""One lane's RTP packets into ordered PCM (``companion/live/rtp_audio.py``): reordering, loss, clock jumps, new
sources, garbage; memory flat over a long stream whatever arrives."""

from __future__ import annotations

import random
import tracemalloc

import numpy as np

from companion.live.rtp_audio import LaneAssembler, RtpPacket, decode_g711, parse_rtp
from cti.live import LIVE_RATE, AudioFrame
from recognizer.audio import MULAW_TABLE


def _packet(index: int, *, seq0: int = 100, ts0: int = 5000, ssrc: int = 7, jump: int = 0) -> RtpPacket:
    payload = bytes((index * 7 + k) % 256 for k in range(160))
    return RtpPacket(0, (seq0 + index) & 0xFFFF, (ts0 + index * 160 + jump) & 0xFFFFFFFF, ssrc, payload)


def _feed(lane: LaneAssembler, packets: list[RtpPacket]) -> list[AudioFrame]:
    frames: list[AudioFrame] = []
    for packet in packets:
        frames += lane.push(packet)
    return frames + lane.flush()


def _pcm(packet: RtpPacket) -> bytes:
    return bytes(MULAW_TABLE[np.frombuffer(packet.payload, dtype=np.uint8)].tobytes())


def _contiguous(frames: list[AudioFrame]) -> bool:
    position = 0
    for frame in frames:
        if round(frame.start * LIVE_RATE) != position:
            return False
        position += len(frame.pcm) // 2
    return True


def test_packets_reordered_within_the_window_come_out_in_order() -> None:
    packets = [_packet(i) for i in range(50)]
    shuffled = packets[:]
    for i in range(0, 48, 3):  # swap neighbours: late by one packet (20 ms, inside the 60 ms window)
        shuffled[i], shuffled[i + 1] = shuffled[i + 1], shuffled[i]
    lane = LaneAssembler("agent")
    frames = _feed(lane, shuffled)
    assert b"".join(f.pcm for f in frames) == b"".join(_pcm(p) for p in packets)
    assert not any(f.filled for f in frames) and _contiguous(frames)
    assert lane.counters.late == 0 and lane.counters.gaps == 0


def test_a_lost_packet_is_silence_of_its_length_and_a_very_late_one_is_dropped() -> None:
    packets = [_packet(i) for i in range(40)]
    arriving = packets[:10] + packets[11:30] + [packets[10]] + packets[30:]  # 10 arrives 20 packets late
    lane = LaneAssembler("customer")
    frames = _feed(lane, arriving)
    assert _contiguous(frames)
    filled = [f for f in frames if f.filled]
    assert len(filled) == 1 and filled[0].pcm == bytes(320) and filled[0].start == 10 * 160 / LIVE_RATE
    assert lane.counters.late == 1
    assert b"".join(f.pcm for f in frames if not f.filled) == b"".join(_pcm(p) for p in packets if p is not packets[10])


def test_a_forward_jump_is_bounded_silence_and_a_backward_one_none() -> None:
    lane = LaneAssembler("agent", max_gap=0.25)
    forward = [_packet(i) for i in range(10)] + [_packet(i, jump=3600 * LIVE_RATE) for i in range(10, 20)]
    frames = _feed(lane, forward)
    assert sum(len(f.pcm) // 2 for f in frames if f.filled) == int(0.25 * LIVE_RATE)
    back = LaneAssembler("agent")
    frames = _feed(back, [_packet(i) for i in range(10)] + [_packet(i, jump=-900_000) for i in range(10, 20)])
    assert not any(f.filled for f in frames) and len(b"".join(f.pcm for f in frames)) == 20 * 320
    assert back.counters.discontinuities == 1 and back.counters.late == 0


def test_a_new_source_and_wrapping_counters_go_on_without_a_hole() -> None:
    lane = LaneAssembler("mixed")
    first = [_packet(i, seq0=65530, ts0=0xFFFFFF00) for i in range(20)]  # both counters wrap
    second = [_packet(i, seq0=9, ts0=77, ssrc=99) for i in range(20)]
    frames = _feed(lane, first + second)
    assert not any(f.filled for f in frames) and _contiguous(frames)
    assert b"".join(f.pcm for f in frames) == b"".join(_pcm(p) for p in first + second)


def test_garbage_and_other_payloads_are_counted_not_played() -> None:
    assert parse_rtp(b"") is None and parse_rtp(b"\x00" * 20) is None and parse_rtp(b"\x80" * 5000) is None
    assert parse_rtp(bytes([0x9F]) + bytes(11)) is None  # 15 CSRCs announced, none there
    padded = bytes([0xA0, 0]) + bytes(10) + b"\xff" * 160 + b"\x00\x00\x03"
    packet = parse_rtp(padded)
    assert packet is not None and packet.payload == b"\xff" * 160
    assert decode_g711(101, b"\x01\x02") is None
    lane = LaneAssembler("agent")
    assert lane.push(RtpPacket(101, 1, 1, 1, b"\x05\x00\x00\xa0")) == []
    assert lane.counters.ignored == 1


def test_memory_stays_flat_over_a_long_stream_with_loss_and_jumps() -> None:
    """Ten minutes of a lane with 5 % loss, reordering, jumps both ways and a new source every minute: the window
    holds at most its length plus a packet, and the memory in use does not grow with the stream."""
    rng = random.Random(3)

    def run(minutes: int) -> tuple[int, int, int]:
        lane = LaneAssembler("agent", window=0.06, max_gap=1.0)
        most_held = played = 0
        jump = 0
        tracemalloc.start()
        tracemalloc.reset_peak()
        for i in range(minutes * 60 * 50):
            if i % 3000 == 1500:
                jump += rng.choice([-10**8, 10**8, 3 * LIVE_RATE])
            if rng.random() < 0.05:
                continue
            for frame in lane.push(_packet(i, jump=jump, ssrc=i // 3000)):
                played += len(frame.pcm)  # the consumer takes each frame: nothing kept here
            most_held = max(most_held, lane.pending_samples)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return most_held, peak, played

    held_short, peak_short, _ = run(1)
    held_long, peak_long, played = run(10)
    assert held_long <= 0.06 * LIVE_RATE + 160 and held_short <= 0.06 * LIVE_RATE + 160
    assert peak_long < peak_short * 1.5 + 64 * 1024  # ten times the audio, not ten times the memory
    assert played >= 10 * 60 * LIVE_RATE * 2 * 0.9
