"""A call's recording files, read into the PCM lanes a recogniser takes.

Asterisk's MixMonitor writes WAV: 16-bit PCM at 8 kHz (``wav``), sometimes G.711 (``ulaw``/``alaw`` in a WAV
container), stereo with option ``D``, one file per direction with ``r()``/``t()``. Other PBX set-ups and tools write
``LIST``/``fact`` chunks, odd-sized chunks, 8-bit PCM or ``WAVE_FORMAT_EXTENSIBLE`` headers. The stdlib ``wave``
module refuses G.711 and extensible headers, and ``audioop`` is gone in Python 3.13, so the RIFF chunks are parsed
here and G.711 is decoded through two 256-entry tables (ITU-T G.711, as Sun's reference ``g711.c``).

Nothing is resampled: each lane keeps its file's rate and the recogniser is built for that rate
(``KaldiRecognizer(model, rate)``), as telephone models expect 8 kHz audio.

What a file that cannot be read gives: an :class:`~recognizer.engine.AudioError` whose text says what is wrong in
an admin's words (it is stored as the failed job's reason):

* missing: the file is not where the recording setting says;
* empty: the 44-byte WAV Asterisk leaves for a call that was never answered (MixMonitor armed with ``b``), or any
  file with no samples;
* **truncated**: the data chunk's header announces more bytes than the file holds. We refuse it rather than decode
  the part that is there: a file still being copied from a share, or cut by a full disk, would otherwise give a
  transcript silently missing the end of the call and marked done; failing keeps the reason visible and the retry
  (the job's next attempt) reads the complete file. A data size of 0 or ``0xFFFFFFFF`` followed by audio (a writer
  that died before updating its header: Asterisk writes the sizes at close) is read to the end of the file instead;
* not a WAV, a corrupt header, an encoding we do not decode (MP3 or GSM in a WAV container, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cti.transcripts import AudioSource, Speaker
from recognizer.engine import AudioError, CallAudio, Lane

#: WAV format tags we decode (``wFormatTag``; the sub-format's first two bytes for ``WAVE_FORMAT_EXTENSIBLE``).
FORMAT_PCM = 1
FORMAT_FLOAT = 3
FORMAT_ALAW = 6
FORMAT_MULAW = 7
FORMAT_EXTENSIBLE = 0xFFFE
#: Names for the tags an admin might meet, for the error message.
_FORMAT_NAMES = {2: "MS ADPCM", 0x11: "IMA ADPCM", 0x31: "GSM 6.10", 0x49: "GSM 6.10", 0x50: "MPEG",
                 0x55: "MP3", 0x64: "G.726", 0x65: "G.722"}
#: Longest recording we read, bytes (a 4 GB RIFF is the format's own limit; this guards memory in a worker).
MAX_FILE_BYTES = 2 * 1024 * 1024 * 1024
#: Highest sample rate / channel count that makes sense for a call recording (a corrupt header says millions).
MAX_RATE = 192_000
MAX_CHANNELS = 8
#: The size of a RIFF/WAVE header with an empty data chunk: Asterisk's file for an unanswered call.
EMPTY_WAV_BYTES = 44
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
#: A stereo file's right channel, by who is on its left.
_OTHER_SIDE: dict[Speaker, Speaker] = {"agent": "customer", "customer": "agent", "unknown": "unknown"}


def _mulaw_table() -> np.ndarray:
    """G.711 mu-law byte -> 16-bit linear (ITU-T G.711; ``ulaw2linear`` of Sun's g711.c)."""
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype("<i2")


def _alaw_table() -> np.ndarray:
    """G.711 a-law byte -> 16-bit linear (ITU-T G.711; ``alaw2linear`` of Sun's g711.c)."""
    a = np.arange(256, dtype=np.int32) ^ 0x55
    mantissa = (a & 0x0F) << 4
    exponent = (a & 0x70) >> 4
    t = np.where(exponent == 0, mantissa + 8, (mantissa + 0x108) << np.maximum(exponent - 1, 0))
    return np.where(a & 0x80, t, -t).astype("<i2")


MULAW_TABLE = _mulaw_table()
ALAW_TABLE = _alaw_table()


@dataclass(frozen=True, slots=True)
class WavAudio:
    """A decoded WAV file: one 16-bit little-endian PCM buffer per channel, at the file's rate."""

    rate: int
    channels: tuple[bytes, ...]
    #: What the file held: ``pcm16``, ``pcm8``, ``pcm24``, ``pcm32``, ``float32``, ``float64``, ``mulaw``, ``alaw``.
    encoding: str

    @property
    def duration(self) -> float:
        return len(self.channels[0]) / 2 / self.rate if self.channels and self.rate else 0.0


@dataclass(frozen=True, slots=True)
class _Format:
    tag: int
    channels: int
    rate: int
    block_align: int
    bits: int


def read_wav(path: Path, *, name: str | None = None) -> WavAudio:
    """Read and decode one WAV file. ``name`` is how the error messages call it (default: the file's name).

    Raises:
        AudioError: missing, unreadable, empty, truncated, not a WAV, or an encoding we do not decode.
    """
    label = name or path.name
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise AudioError(f"recording {label} is too large to transcribe ({size} bytes)")
        data = path.read_bytes()
    except FileNotFoundError:
        raise AudioError(f"recording {label} not found at {path}") from None
    except IsADirectoryError:
        raise AudioError(f"recording {label} is a folder, not a file ({path})") from None
    except OSError as e:
        raise AudioError(f"recording {label} cannot be read ({path}): {e.strerror or e}") from None
    return decode_wav(data, name=label)


def decode_wav(data: bytes, *, name: str = "the recording") -> WavAudio:
    """Decode a WAV file held in memory (see :func:`read_wav`)."""
    if len(data) == 0:
        raise AudioError(f"{name} is empty (0 bytes): nothing was recorded")
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RIFX") or data[8:12] != b"WAVE":
        raise AudioError(f"{name} is not a WAV file ({_what_it_looks_like(data)})")
    if data[:4] == b"RIFX":
        raise AudioError(f"{name} is a big-endian WAV (RIFX), which we do not decode")
    fmt: _Format | None = None
    audio: bytes | None = None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos:pos + 4]
        chunk_size = int.from_bytes(data[pos + 4:pos + 8], "little")
        body_start = pos + 8
        if chunk_id == b"data":
            available = len(data) - body_start
            if chunk_size in _UNKNOWN_SIZES and available > 0:
                chunk_size = available  # a writer that died before writing the size: read to the end
            if chunk_size > available:
                raise AudioError(_truncated(name, fmt, chunk_size, available))
            audio = data[body_start:body_start + chunk_size]
            if fmt is not None:
                break  # anything after the samples (a trailing LIST) is of no use to us
        elif chunk_id == b"fmt ":
            if chunk_size < 16 or body_start + chunk_size > len(data):
                raise AudioError(f"{name} has a corrupt WAV header (its format chunk is cut short)")
            fmt = _parse_fmt(data[body_start:body_start + chunk_size], name)
            if audio is not None:
                break
        # Chunks are word-aligned: an odd-sized chunk is followed by one pad byte (LIST, fact, bext, junk ...).
        pos = body_start + chunk_size + (chunk_size & 1)
    if fmt is None:
        raise AudioError(f"{name} has a corrupt WAV header (no format chunk)")
    if audio is None:
        raise AudioError(f"{name} has no audio (no data chunk): the file is corrupt or was cut short")
    if len(audio) == 0:
        if len(data) <= EMPTY_WAV_BYTES + 64:
            raise AudioError(f"{name} is empty ({len(data)} bytes): the call was never answered")
        raise AudioError(f"{name} holds no audio (its data chunk is empty)")
    return _decode_samples(audio, fmt, name)


def _parse_fmt(body: bytes, name: str) -> _Format:
    tag = int.from_bytes(body[0:2], "little")
    channels = int.from_bytes(body[2:4], "little")
    rate = int.from_bytes(body[4:8], "little")
    block_align = int.from_bytes(body[12:14], "little")
    bits = int.from_bytes(body[14:16], "little")
    if tag == FORMAT_EXTENSIBLE:
        if len(body) < 40:
            raise AudioError(f"{name} has a corrupt WAV header (an extensible format chunk of {len(body)} bytes)")
        # WAVEFORMATEXTENSIBLE: cbSize, wValidBitsPerSample, dwChannelMask, then the sub-format GUID whose first
        # two bytes are the plain format tag (KSDATAFORMAT_SUBTYPE_PCM = 0x0001, _IEEE_FLOAT = 0x0003, ...).
        tag = int.from_bytes(body[24:26], "little")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(f"{name} has a corrupt WAV header ({channels} channels)")
    if not 1000 <= rate <= MAX_RATE:
        raise AudioError(f"{name} has a corrupt WAV header (sample rate {rate} Hz)")
    return _Format(tag=tag, channels=channels, rate=rate, block_align=block_align, bits=bits)


def _decode_samples(audio: bytes, fmt: _Format, name: str) -> WavAudio:
    """Every channel as 16-bit PCM; a trailing partial frame (a writer stopped mid-sample) is dropped."""
    if fmt.tag in (FORMAT_MULAW, FORMAT_ALAW):
        width, encoding = 1, "mulaw" if fmt.tag == FORMAT_MULAW else "alaw"
    elif fmt.tag == FORMAT_PCM and fmt.bits in (8, 16, 24, 32):
        width, encoding = fmt.bits // 8, f"pcm{fmt.bits}"
    elif fmt.tag == FORMAT_FLOAT and fmt.bits in (32, 64):
        width, encoding = fmt.bits // 8, f"float{fmt.bits}"
    else:
        kind = _FORMAT_NAMES.get(fmt.tag, f"format tag {fmt.tag:#06x}")
        if fmt.tag in (FORMAT_PCM, FORMAT_FLOAT):
            kind = f"{'PCM' if fmt.tag == FORMAT_PCM else 'float'} with {fmt.bits} bits per sample"
        raise AudioError(f"{name} is in an encoding we do not decode ({kind}); record as wav, ulaw or alaw")
    frame = width * fmt.channels
    usable = len(audio) - len(audio) % frame
    if usable == 0:
        raise AudioError(f"{name} holds no audio (less than one sample)")
    raw = audio[:usable]
    if encoding == "pcm16":
        samples = np.frombuffer(raw, dtype="<i2")
    elif encoding == "pcm8":
        samples = ((np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128) << 8).astype("<i2")
    elif encoding == "pcm24":
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        samples = ((b[:, 2].astype(np.int16) << 8) | b[:, 1]).astype("<i2")  # the top 16 of 24 bits
    elif encoding == "pcm32":
        samples = (np.frombuffer(raw, dtype="<i4") >> 16).astype("<i2")
    elif encoding.startswith("float"):
        floats = np.frombuffer(raw, dtype="<f4" if encoding == "float32" else "<f8")
        samples = np.clip(np.nan_to_num(floats) * 32768.0, -32768, 32767).astype("<i2")
    else:
        table = MULAW_TABLE if encoding == "mulaw" else ALAW_TABLE
        samples = table[np.frombuffer(raw, dtype=np.uint8)]
    per_channel = samples.reshape(-1, fmt.channels)
    channels = tuple(np.ascontiguousarray(per_channel[:, c]).astype("<i2").tobytes() for c in range(fmt.channels))
    return WavAudio(rate=fmt.rate, channels=channels, encoding=encoding)


def _truncated(name: str, fmt: _Format | None, announced: int, available: int) -> str:
    if fmt is not None and fmt.block_align:
        per_second = fmt.rate * fmt.block_align
        return (f"{name} is truncated: its header announces {announced / per_second:.1f} s of audio, the file holds "
                f"{available / per_second:.1f} s (a copy cut short or still being written)")
    return (f"{name} is truncated: its header announces {announced} bytes of audio, the file holds {available} "
            f"(a copy cut short or still being written)")


def _what_it_looks_like(data: bytes) -> str:
    head = data[:12]
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "it looks like MP3"
    if head.startswith(b"OggS"):
        return "it looks like Ogg"
    if head.startswith(b"fLaC"):
        return "it looks like FLAC"
    if head.startswith(b"#!AMR"):
        return "it looks like AMR"
    if head.startswith(b"RIFF"):
        return f"a RIFF file of type {head[8:12]!r}"
    return f"{len(data)} bytes starting {head[:8].hex(' ')}"


def lanes_of(source: AudioSource, wav: WavAudio) -> tuple[Lane, ...]:
    """The lanes one file gives, by its layout: a stereo file two (``source.left`` on the left), a split file its
    side, a mono file one mixed lane (``unknown``: the speakers are told apart later by their voices)."""
    if source.layout == "stereo":
        if len(wav.channels) < 2:
            raise AudioError(f"{source.name} was recorded as stereo but has one channel")
        right = _OTHER_SIDE[source.left]
        return (Lane(source.left, wav.channels[0], wav.rate), Lane(right, wav.channels[1], wav.rate))
    pcm = wav.channels[0] if len(wav.channels) == 1 else _mix(wav.channels)
    speaker: Speaker = "unknown" if source.layout == "mono" else source.layout
    return (Lane(speaker, pcm, wav.rate),)


def _mix(channels: tuple[bytes, ...]) -> bytes:
    """A file said to hold one side or a mix but written with several channels: their average."""
    stacked = np.stack([np.frombuffer(c, dtype="<i2").astype(np.int32) for c in channels])
    mixed: bytes = (stacked.sum(axis=0) // len(channels)).astype("<i2").tobytes()
    return mixed


def load_call_audio(sources: Sequence[AudioSource], resolve: Callable[[str], Path]) -> CallAudio:
    """Read a call's recording files into lanes, ready for :meth:`recognizer.engine.Engine.transcribe`.

    ``resolve`` turns a recording's name into its path (``asterisk/recording_files.py`` in the daemon; it raises
    ValueError for a name that is not a plain file name). Where the call has per-side files (``agent``/``customer``:
    MixMonitor's ``r()``/``t()``, ``<base>-in.wav``/``<base>-out.wav``), the mix file they were recorded beside
    (``<base>.wav``) is not read: the split files already hold every word, with its speaker. A mix file that is no
    split file's base (a second recording after a transfer) is read as usual. Lanes come in the sources' order.

    Raises:
        AudioError: no sources, or a file that cannot be read (the first one met; its name is in the message).
    """
    if not sources:
        raise AudioError("the call has no recording")
    split_stems = [_stem(s.name) for s in sources if s.layout in ("agent", "customer")]
    chosen = [s for s in sources if s.layout in ("agent", "customer")
              or not any(_is_part_of(stem, _stem(s.name)) for stem in split_stems)]
    lanes: list[Lane] = []
    for source in chosen:
        try:
            path = resolve(source.name)
        except (ValueError, OSError) as e:
            raise AudioError(f"recording {source.name}: {e}") from None
        lanes.extend(lanes_of(source, read_wav(path, name=source.name)))
    return CallAudio(lanes=tuple(lanes))


def _stem(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base


def _is_part_of(split_stem: str, mix_stem: str) -> bool:
    """``<base>-in`` (or ``_in``, ``.in``) was recorded beside ``<base>``."""
    return (len(split_stem) > len(mix_stem) and split_stem.startswith(mix_stem)
            and not split_stem[len(mix_stem)].isalnum())
