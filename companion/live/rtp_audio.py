"""One lane's RTP packets → ordered 16-bit PCM ``AudioFrame`` s; lost packets and jumps as bounded silence.

Why our own, and not pyVoIP's audio: its ``RTPClient`` decodes G.711 to *8-bit* PCM (``audioop.ulaw2lin(payload, 1)``:
half the resolution thrown away before the recogniser sees it), its ``RTPPacketManager`` fills every gap with
full-scale ``0x80`` bytes and keeps the whole call in one ``BytesIO`` addressed by timestamp (a timestamp jump of an
hour allocates an hour of buffer), and its ``read(blocking=True)`` spins while the stream is silent. This module takes
the raw payload of each packet instead and:

* decodes PCMU/PCMA through the G.711 tables of ``recognizer/audio.py`` (one concept, one place) to 16-bit PCM;
* orders packets by timestamp within a small window (``window`` seconds of later audio): a packet late by less than
  that is put in its place, a later one is dropped (its place was already played as silence);
* fills a packet the network lost with silence of its length (``filled=True``), so word times stay on the RTP clock;
* bounds every gap: a long stretch lost, or a timestamp that jumps forward (silence suppression, a sender's clock
  restarted) becomes silence of at most ``max_gap`` seconds; a timestamp that jumps *back* while the sequence number
  runs on, or a new SSRC (a new source: Asterisk after a masquerade), continues the lane where it was, no silence.

So the lane's output is contiguous (each frame starts where the previous one ended), its memory is at most the
window plus one packet whatever arrives, and hostile packets (garbage, huge jumps, any payload type) cost nothing but
a counter. Pure: no socket, no clock, no thread; the SIP tap (``companion/live/sip_tap.py``) calls it from its RTP
thread and calls :meth:`LaneAssembler.flush` when the stream has been quiet a while.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from cti.live import LIVE_RATE, AudioFrame, Lane
from recognizer.audio import ALAW_TABLE, MULAW_TABLE

#: RTP payload types decoded (RFC 3551 static types): G.711 mu-law and a-law, both 8 kHz.
PCMU = 0
PCMA = 8
_TABLES = {PCMU: MULAW_TABLE, PCMA: ALAW_TABLE}

_HEADER = struct.Struct("!BBHII")
#: A datagram larger than this is not one RTP packet of telephone audio (20 ms of G.711 is 160 bytes).
MAX_PACKET = 4096
#: Sequence numbers further apart than this (either way) are a new stream, not loss or reordering.
_SEQ_SLACK = 3000


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """The fields of one RTP packet the lane needs (RFC 3550 §5.1), its payload without padding or extensions."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes


def parse_rtp(data: bytes) -> RtpPacket | None:
    """One datagram as an RTP packet, or None when it is not one (anything may arrive on a UDP port).

    Version 2 only; the CSRC list, a header extension and padding are skipped as RFC 3550 §5.1/§5.3.1 say.
    """
    if len(data) < _HEADER.size or len(data) > MAX_PACKET:
        return None
    first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
    if first >> 6 != 2:
        return None
    offset = _HEADER.size + 4 * (first & 0x0F)
    if first & 0x10:  # header extension: 16-bit profile, 16-bit length in 32-bit words
        if len(data) < offset + 4:
            return None
        offset += 4 + 4 * int.from_bytes(data[offset + 2:offset + 4], "big")
    end = len(data)
    if first & 0x20:  # padding: its length is the last byte
        end -= data[-1]
    if offset > end:
        return None
    return RtpPacket(second & 0x7F, sequence, timestamp, ssrc, data[offset:end])


def decode_g711(payload_type: int, payload: bytes) -> bytes | None:
    """G.711 bytes → 16-bit signed little-endian PCM (None for a payload type that is not PCMU/PCMA)."""
    table = _TABLES.get(payload_type)
    if table is None:
        return None
    pcm: bytes = table[np.frombuffer(payload, dtype=np.uint8)].tobytes()
    return pcm


@dataclass(slots=True)
class LaneCounters:
    """What happened to a lane's packets: for logs, ``/api/health`` and the tests."""

    packets: int = 0
    #: Not RTP, or a payload type we do not decode (telephone-event, comfort noise, video).
    ignored: int = 0
    #: Arrived after their place had been played (as silence): too late for the window.
    late: int = 0
    duplicates: int = 0
    #: Samples of silence put where packets were lost, and how many such gaps.
    filled_samples: int = 0
    gaps: int = 0
    #: Timestamp jumps and new sources the lane continued across.
    discontinuities: int = 0


@dataclass(slots=True)
class _Pending:
    at: int  # where it plays, in samples on the lane's (rebased, unwrapped) timestamp line
    pcm: bytes
    sequence: int


class LaneAssembler:
    """One lane's jitter window and gap filling (see the module docstring): :meth:`push` packets, get frames.

    Args:
        lane: the lane the frames are for.
        window: seconds of audio past a missing packet held while it may still come (reordering); then the gap is
            declared lost and filled. Also the most this holds.
        max_gap: the longest silence one gap becomes (a long loss still keeps the lane's memory and times bounded).
    """

    def __init__(self, lane: Lane, *, window: float = 0.06, max_gap: float = 1.0) -> None:
        if window <= 0 or max_gap <= 0:
            raise ValueError("window and max_gap are positive")
        self.lane: Lane = lane
        self.window = max(1, round(window * LIVE_RATE))
        self.max_gap = max(1, round(max_gap * LIVE_RATE))
        self.counters = LaneCounters()
        #: Samples handed out so far: where the next frame starts.
        self.position = 0
        self._ssrc: int | None = None
        self._last_seq = 0  # unwrapped sequence number of the newest accepted packet
        self._last_ts = 0  # its raw 32-bit timestamp ...
        self._last_at = 0  # ... and where it plays on the lane's line
        self._last_len = 160
        self._next_at = 0  # where the next sample to hand out plays
        self._pending: dict[int, _Pending] = {}
        #: False until the window has filled once (at the start, and after a new source): the first packets to
        #: arrive need not be the first sent either.
        self._primed = False

    @property
    def pending_samples(self) -> int:
        """Samples held in the window now (bounded: at most the window plus one packet)."""
        return sum(len(p.pcm) // 2 for p in self._pending.values())

    def push(self, packet: RtpPacket) -> list[AudioFrame]:
        """Take one packet; return the frames it releases (in order, contiguous with the previous ones)."""
        self.counters.packets += 1
        pcm = decode_g711(packet.payload_type, packet.payload)
        if pcm is None or not pcm:
            self.counters.ignored += 1
            return []
        samples = len(pcm) // 2
        frames: list[AudioFrame] = []
        if self._ssrc is None:
            self._start(packet, at=self._next_at)
        else:
            seq_delta = _wrapped_delta(packet.sequence, self._last_seq & 0xFFFF, 16)
            if packet.ssrc != self._ssrc or abs(seq_delta) > _SEQ_SLACK:
                frames += self._discontinuity(packet)
            else:
                ts_delta = _wrapped_delta(packet.timestamp, self._last_ts, 32)
                # Where the sequence number says it plays (packets of the last one's length), against the timestamp.
                # A clock that jumped forward needs nothing: the gap it opens is filled with at most max_gap of
                # silence like a loss. One that jumped back would make every later packet "late": start again.
                by_sequence = seq_delta * self._last_len
                if ts_delta - by_sequence < -(self.max_gap + self.window):
                    frames += self._discontinuity(packet)
                elif seq_delta > 0:
                    self._last_seq += seq_delta
                    self._last_ts = packet.timestamp
                    self._last_at += ts_delta
                    self._last_len = samples
        at = self._last_at + _wrapped_delta(packet.timestamp, self._last_ts, 32)
        if self._primed and at + samples <= self._next_at:
            self.counters.late += 1
            return frames
        if self._primed and at < self._next_at:  # partly played already: keep the part still to come
            pcm = pcm[(self._next_at - at) * 2:]
            at = self._next_at
        if at in self._pending:
            self.counters.duplicates += 1
            return frames
        self._pending[at] = _Pending(at, pcm, packet.sequence)
        frames += self._release(final=False)
        return frames

    def flush(self) -> list[AudioFrame]:
        """Hand out everything held, gaps filled (the stream went quiet, or ended): no audio waits for a packet that
        may never come."""
        return self._release(final=True)

    def _start(self, packet: RtpPacket, *, at: int) -> None:
        self._ssrc = packet.ssrc
        self._last_seq = packet.sequence
        self._last_ts = packet.timestamp
        self._last_at = at
        self._last_len = max(1, len(packet.payload))

    def _discontinuity(self, packet: RtpPacket) -> list[AudioFrame]:
        """A jump of the clocks or a new source: play what is held, then go on from the end of it, no silence."""
        self.counters.discontinuities += 1
        frames = self._release(final=True)
        self._start(packet, at=self._next_at)
        self._primed = False
        return frames

    def _release(self, *, final: bool) -> list[AudioFrame]:
        frames: list[AudioFrame] = []
        if not self._primed and self._pending:
            if not final and sum(len(p.pcm) // 2 for p in self._pending.values()) < self.window:
                return frames
            self._next_at = min(self._pending)
            self._primed = True
        while self._pending:
            first = min(self._pending)
            if first > self._next_at:
                held = sum(len(p.pcm) // 2 for p in self._pending.values())
                if not final and held < self.window:
                    break  # the missing packet may still come
                gap = first - self._next_at
                silence = min(gap, self.max_gap)
                frames.append(self._frame(bytes(2 * silence), filled=True))
                self.counters.gaps += 1
                self.counters.filled_samples += silence
                self._next_at = first
            chunk = self._pending.pop(first)
            frames.append(self._frame(chunk.pcm, filled=False))
            self._next_at = first + len(chunk.pcm) // 2
        return _merge(frames)

    def _frame(self, pcm: bytes, *, filled: bool) -> AudioFrame:
        frame = AudioFrame(self.lane, pcm, self.position / LIVE_RATE, filled)
        self.position += len(pcm) // 2
        return frame


def _wrapped_delta(new: int, old: int, bits: int) -> int:
    """``new - old`` on a counter of ``bits`` bits that wraps: the shorter way round (RFC 3550 A.1)."""
    span = 1 << bits
    delta = (new - old) % span
    return delta - span if delta >= span // 2 else delta


def _merge(frames: list[AudioFrame]) -> list[AudioFrame]:
    """Adjacent frames of the same kind as one (fewer hand-overs to the event loop)."""
    merged: list[AudioFrame] = []
    for frame in frames:
        if merged and merged[-1].filled == frame.filled:
            last = merged[-1]
            merged[-1] = AudioFrame(last.lane, last.pcm + frame.pcm, last.start, last.filled)
        else:
            merged.append(frame)
    return merged
