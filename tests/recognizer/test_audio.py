"""Reading a call's recordings into lanes: the RIFF/WAV shapes PBXs write, G.711, stereo and split files, the files
that cannot be read (each with its reason), and where a lane's speech is.

No model here: the decoded samples are compared with independent decoders (the stdlib ``wave`` module for PCM,
``eval_vosk.py``'s own mu-law decoder, CPython's ``audioop`` for a-law) on the real files of ``../shared``.
"""

from __future__ import annotations

import importlib.util
import struct
import sys
import warnings
import wave
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from cti.transcripts import AudioSource
from recognizer.audio import ALAW_TABLE, MULAW_TABLE, decode_wav, load_call_audio, read_wav
from recognizer.engine import AudioError
from recognizer.silence import speech_spans
from tests.speech import (
    EMPTY_TRACE,
    SPEECH,
    SPLIT_BASE,
    SPLIT_TRACE,
    recording_files,
    recordings_dir,
    speech_calls,
    speech_refs,
)

if sys.version_info >= (3, 13):  # audioop left the stdlib; audioop-lts (a dev dependency) is the same C code
    import audioop  # pragma: no cover
else:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop


def eval_vosk() -> ModuleType:
    """``../shared/speech/eval_vosk.py``, the bare-Vosk baseline, for its own mu-law decoder."""
    spec = importlib.util.spec_from_file_location("eval_vosk", SPEECH / "eval_vosk.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chunk(chunk_id: bytes, body: bytes) -> bytes:
    """A RIFF chunk, padded to an even length as the format says."""
    return chunk_id + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")


def fmt_chunk(tag: int, channels: int, rate: int, bits: int, extra: bytes = b"") -> bytes:
    block = channels * bits // 8
    return chunk(b"fmt ", struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits) + extra)


def riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def wave_pcm(path: Path) -> tuple[int, int, bytes]:
    """The stdlib's reading of a PCM file: rate, channels, frames."""
    with wave.open(str(path)) as w:
        return w.getframerate(), w.getnchannels(), w.readframes(w.getnframes())


def pcm_of(path: Path) -> bytes:
    return wave_pcm(path)[2]


def test_pcm_files_read_as_the_wave_module_reads_them() -> None:
    """Every 8 kHz and 16 kHz PCM file of the speech set and every non-empty trace recording: same rate, same
    samples as the stdlib's ``wave``; nothing resampled."""
    files = [SPEECH / r[key] for r in speech_refs() for key in ("file", "file_8k")] + [
        p for p in recording_files() if p.stat().st_size > 44
    ]
    assert len(files) > 60
    for path in files:
        rate, channels, frames = wave_pcm(path)
        assert channels == 1
        audio = read_wav(path)
        assert (audio.rate, audio.encoding, audio.channels) == (rate, "pcm16", (frames,)), path.name


def test_mulaw_decodes_as_eval_vosk_and_audioop_decode_it() -> None:
    """G.711 mu-law (format 7, with a ``fact`` chunk, ``cbSize`` in ``fmt``): the same 16-bit samples as the
    baseline script's decoder, on every mu-law file of the speech set, and the same table as CPython's."""
    reference = eval_vosk()
    files = [SPEECH / r["file_8k_ulaw"] for r in speech_refs() if "file_8k_ulaw" in r]
    assert len(files) == 6
    for path in files:
        raw = path.read_bytes()
        rate, expected = reference.open_any(str(path))
        audio = read_wav(path)
        assert (audio.rate, audio.encoding) == (rate, "mulaw") == (8000, "mulaw")
        assert audio.channels == (expected,), path.name
        assert len(raw) - len(expected) // 2 < 100  # one byte a sample: the whole data chunk was decoded
    every_code = bytes(range(256))
    assert MULAW_TABLE.tobytes() == reference.ulaw_to_pcm16(every_code) == audioop.ulaw2lin(every_code, 2)


def test_alaw_file_encoded_by_audioop_decodes_to_its_reference(tmp_path: Path) -> None:
    """G.711 a-law (format 6): a real 8 kHz utterance encoded with CPython's ``audioop.lin2alaw`` (the reference
    encoder), written as a WAV with a ``fact`` chunk, decodes to exactly ``audioop.alaw2lin``'s samples, which stay
    within a-law's quantisation step of the original."""
    pcm = pcm_of(SPEECH / "ru_02_8k.wav")
    alaw = audioop.lin2alaw(pcm, 2)
    path = tmp_path / "alaw.wav"
    path.write_bytes(riff(fmt_chunk(6, 1, 8000, 8, b"\0\0"), chunk(b"fact", struct.pack("<I", len(alaw))),
                          chunk(b"data", alaw)))
    audio = read_wav(path)
    assert (audio.rate, audio.encoding) == (8000, "alaw")
    assert audio.channels == (audioop.alaw2lin(alaw, 2),)
    original = np.frombuffer(pcm, dtype="<i2").astype(np.int32)
    decoded = np.frombuffer(audio.channels[0], dtype="<i2").astype(np.int32)
    # a-law's step is 1/16 of the segment: at most |x|/32 + 16 off.
    assert np.all(np.abs(decoded - original) <= np.abs(original) // 32 + 16)
    assert ALAW_TABLE.tobytes() == audioop.alaw2lin(bytes(range(256)), 2)


def test_stereo_call_splits_into_agent_and_customer_lanes() -> None:
    """A stereo file (left = agent here) gives two lanes, each its channel's samples as ``wave`` reads them; with
    ``left = "customer"`` the same file's lanes swap speakers."""
    call = speech_calls()[0]
    rate, channels, frames = wave_pcm(call.path)
    assert channels == 2
    both = np.frombuffer(frames, dtype="<i2").reshape(-1, 2)
    left, right = both[:, 0].tobytes(), both[:, 1].tobytes()
    audio = load_call_audio([AudioSource(call.path.name, "stereo")], lambda name: SPEECH / name)
    assert [(lane.speaker, lane.pcm, lane.rate) for lane in audio.lanes] == [("agent", left, rate),
                                                                             ("customer", right, rate)]
    assert audio.duration == pytest.approx(call.duration, abs=0.01)
    swapped = load_call_audio([AudioSource(call.path.name, "stereo", left="customer")], lambda name: SPEECH / name)
    assert [(lane.speaker, lane.pcm) for lane in swapped.lanes] == [("customer", left), ("agent", right)]


def test_split_files_win_over_the_mix_beside_them() -> None:
    """Scenario 34's three files (mix, ``-in`` customer, ``-out`` agent): two lanes, one per side, the mix not read
    (its words would be transcribed twice); a mix that is no split file's base is still read."""
    folder = recordings_dir(SPLIT_TRACE)
    read: list[str] = []

    def resolve(name: str) -> Path:
        read.append(name)
        return folder / name

    sources = [AudioSource(f"{SPLIT_BASE}.wav", "mono"), AudioSource(f"{SPLIT_BASE}-in.wav", "customer"),
               AudioSource(f"{SPLIT_BASE}-out.wav", "agent")]
    audio = load_call_audio(sources, resolve)
    assert read == [f"{SPLIT_BASE}-in.wav", f"{SPLIT_BASE}-out.wav"]
    assert [(lane.speaker, lane.pcm) for lane in audio.lanes] == [
        ("customer", pcm_of(folder / f"{SPLIT_BASE}-in.wav")), ("agent", pcm_of(folder / f"{SPLIT_BASE}-out.wav"))]

    other = AudioSource("01-direct-answered.wav", "mono")
    audio = load_call_audio([*sources, other], lambda name: folder / name if name.startswith("2026") else
                            recording_files()[0])
    assert [lane.speaker for lane in audio.lanes] == ["customer", "agent", "unknown"]
    only_mix = load_call_audio(sources[:1], resolve)
    assert [lane.speaker for lane in only_mix.lanes] == ["unknown"]


def test_riff_chunks_in_any_order_odd_sizes_and_extras(tmp_path: Path) -> None:
    """``data`` before ``fmt``, an odd-sized ``LIST`` (its pad byte), ``fact``, ``JUNK`` and a trailing chunk: the
    same samples as the plain file."""
    pcm = pcm_of(SPEECH / "en_01_8k.wav")
    odd = chunk(b"LIST", b"INFOISFT\x05\0\0\0Lavf\0")  # 17 bytes: padded
    assert len(odd) % 2 == 0 and struct.unpack("<I", odd[4:8])[0] % 2 == 1
    shapes = [
        riff(chunk(b"data", pcm), fmt_chunk(1, 1, 8000, 16)),
        riff(odd, fmt_chunk(1, 1, 8000, 16), chunk(b"fact", b"\0" * 4), chunk(b"JUNK", b"\0" * 27),
             chunk(b"data", pcm), odd),
    ]
    for data in shapes:
        audio = decode_wav(data)
        assert (audio.rate, audio.channels) == (8000, (pcm,))


def test_extensible_and_other_pcm_widths(tmp_path: Path) -> None:
    """``WAVE_FORMAT_EXTENSIBLE`` (PCM and mu-law sub-formats), 8-bit unsigned, 24- and 32-bit PCM, 32-bit float:
    all decoded to the 16-bit samples they hold."""
    pcm = pcm_of(SPEECH / "en_02_8k.wav")
    samples = np.frombuffer(pcm, dtype="<i2")

    def extensible(bits: int, sub: int) -> bytes:
        guid_tail = bytes.fromhex("000000001000800000aa00389b71")
        return struct.pack("<HHI", 22, bits, 4) + struct.pack("<H", sub) + guid_tail

    ulaw = audioop.lin2ulaw(pcm, 2)
    cases = {
        "extensible pcm16": (riff(fmt_chunk(0xFFFE, 1, 8000, 16, extensible(16, 1)), chunk(b"data", pcm)), pcm),
        "extensible mu-law": (riff(fmt_chunk(0xFFFE, 1, 8000, 8, extensible(8, 7)), chunk(b"data", ulaw)),
                              audioop.ulaw2lin(ulaw, 2)),
        "8-bit": (riff(fmt_chunk(1, 1, 8000, 8), chunk(b"data", audioop.bias(audioop.lin2lin(pcm, 2, 1), 1, 128))),
                  audioop.lin2lin(audioop.lin2lin(pcm, 2, 1), 1, 2)),
        "24-bit": (riff(fmt_chunk(1, 1, 8000, 24), chunk(b"data", audioop.lin2lin(pcm, 2, 3))), pcm),
        "32-bit": (riff(fmt_chunk(1, 1, 8000, 32), chunk(b"data", audioop.lin2lin(pcm, 2, 4))), pcm),
        "float": (riff(fmt_chunk(3, 1, 8000, 32), chunk(b"data", (samples / 32768.0).astype("<f4").tobytes())), pcm),
    }
    for label, (data, expected) in cases.items():
        assert decode_wav(data).channels == (expected,), label


def test_missing_empty_truncated_corrupt_and_foreign_files_each_say_why(tmp_path: Path) -> None:
    """Each file that cannot be transcribed raises AudioError with its own reason, in words an admin can act on."""
    empty = next(recordings_dir(EMPTY_TRACE).glob("*.wav"))
    assert empty.stat().st_size == 44
    with pytest.raises(AudioError, match=r"is empty \(44 bytes\): the call was never answered"):
        read_wav(empty)

    whole = (recordings_dir(SPLIT_TRACE) / f"{SPLIT_BASE}.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(AudioError, match=r"cut\.wav is truncated: its header announces 9\.9 s of audio, the file "
                                         r"holds 5\.0 s"):
        read_wav(tmp_path / "cut.wav")

    with pytest.raises(AudioError, match=r"recording gone\.wav not found at .*gone\.wav"):
        read_wav(tmp_path / "gone.wav")
    (tmp_path / "zero.wav").write_bytes(b"")
    with pytest.raises(AudioError, match=r"zero\.wav is empty \(0 bytes\)"):
        read_wav(tmp_path / "zero.wav")
    (tmp_path / "song.wav").write_bytes(b"ID3\x04\0\0\0\0\0\x21" + bytes(200))
    with pytest.raises(AudioError, match=r"song\.wav is not a WAV file \(it looks like MP3\)"):
        read_wav(tmp_path / "song.wav")
    (tmp_path / "noise.wav").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(AudioError, match=r"noise\.wav is not a WAV file"):
        read_wav(tmp_path / "noise.wav")
    (tmp_path / "gsm.wav").write_bytes(riff(fmt_chunk(0x31, 1, 8000, 0), chunk(b"data", bytes(650))))
    with pytest.raises(AudioError, match=r"gsm\.wav is in an encoding we do not decode \(GSM 6\.10\)"):
        read_wav(tmp_path / "gsm.wav")
    corrupt = bytearray(whole[:2000])
    corrupt[24:28] = struct.pack("<I", 4_000_000_000)  # the sample rate
    (tmp_path / "corrupt.wav").write_bytes(bytes(corrupt))
    with pytest.raises(AudioError, match=r"corrupt\.wav has a corrupt WAV header \(sample rate 4000000000 Hz\)"):
        read_wav(tmp_path / "corrupt.wav")
    (tmp_path / "nofmt.wav").write_bytes(riff(chunk(b"data", bytes(100))))
    with pytest.raises(AudioError, match=r"nofmt\.wav has a corrupt WAV header \(no format chunk\)"):
        read_wav(tmp_path / "nofmt.wav")
    (tmp_path / "folder.wav").mkdir()
    with pytest.raises(AudioError, match=r"folder\.wav is a folder"):
        read_wav(tmp_path / "folder.wav")


def test_a_call_fails_on_its_first_unreadable_file_and_on_a_refused_name() -> None:
    """The call's error names the file; a name the resolver refuses (a path from outside the folder) is an
    AudioError too, never a crash of the job."""
    empty = next(recordings_dir(EMPTY_TRACE).glob("*.wav"))
    with pytest.raises(AudioError, match=rf"{empty.name} is empty"):
        load_call_audio([AudioSource(empty.name, "mono")], lambda name: empty)

    def refuse(name: str) -> Path:
        raise ValueError(f"{name!r} is not a file name (it holds a separator)")

    with pytest.raises(AudioError, match=r"recording \.\./etc/passwd: '\.\./etc/passwd' is not a file name"):
        load_call_audio([AudioSource("../etc/passwd", "mono")], refuse)
    with pytest.raises(AudioError, match="the call has no recording"):
        load_call_audio([], refuse)


def test_a_header_left_without_sizes_is_read_to_the_end(tmp_path: Path) -> None:
    """A writer killed before it wrote the sizes (data size 0 or 0xFFFFFFFF, audio after it): the audio is there,
    and read."""
    pcm = pcm_of(SPEECH / "en_03_8k.wav")
    for size in (0, 0xFFFFFFFF):
        data = riff(fmt_chunk(1, 1, 8000, 16)) + b"data" + struct.pack("<I", size) + pcm
        assert decode_wav(data).channels == (pcm,)


def audible(pcm: bytes, rate: int, start: float, end: float) -> tuple[float, float]:
    """The first and last 10 ms between ``start`` and ``end`` louder than -60 dBFS (a plain RMS, apart from the
    detector under test)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    step = rate // 100
    loud = [i for i in range(int(start * rate), int(end * rate) - step, step)
            if np.sqrt(np.mean(samples[i:i + step] ** 2)) > 32768 * 10 ** (-60 / 20)]
    return loud[0] / rate, (loud[-1] + step) / rate


def test_speech_stretches_cover_each_side_and_skip_the_other() -> None:
    """On both stereo calls each lane's stretches hold every utterance of its side and leave out most of the time
    the other side talks: the recogniser is fed under 60% of each lane."""
    for call in speech_calls():
        audio = load_call_audio([AudioSource(call.path.name, "stereo")], lambda name: SPEECH / name)
        for lane in audio.lanes:
            spans = [span.seconds(lane.rate) for span in speech_spans(lane.pcm, lane.rate)]
            mine = [u for u in call.utterances if u.channel == lane.speaker]
            for u in mine:
                # The clip's bounds hold some silence at each end: where it is audible is inside a stretch.
                first, last = audible(lane.pcm, lane.rate, u.start, u.end)
                assert u.start < first < last < u.end
                assert any(start <= first and last <= end for start, end in spans), (call.path, u)
            fed = sum(end - start for start, end in spans)
            assert fed < 0.6 * lane.duration
            others = [u for u in call.utterances if u.channel != lane.speaker]
            skipped = sum(max(0.0, min(u.end - 0.4, 1e9) - (u.start + 0.4)) for u in others
                          if not any(start < u.end - 0.4 and u.start + 0.4 < end for start, end in spans))
            assert skipped > 0.5 * sum(u.end - u.start - 0.8 for u in others)


def test_a_quiet_side_on_a_noisy_line_is_found_and_silence_is_not() -> None:
    """A sentence 30 dB down (about -50 dBFS) in line hiss 20 dB below it is found, with the hiss before and after
    it left out; a lane of digital silence holds no speech."""
    rate = 8000
    speech = np.frombuffer(pcm_of(SPEECH / "ru_04_8k.wav"), dtype="<i2").astype(np.float64) / 31.6
    rng = np.random.default_rng(14)
    lane = rng.normal(0.0, 1.2, rate * 12)  # hiss at about -70 dBFS
    at = 5 * rate
    lane[at:at + len(speech)] += speech
    pcm = np.clip(lane, -32768, 32767).astype("<i2").tobytes()
    spans = [span.seconds(rate) for span in speech_spans(pcm, rate)]
    assert len(spans) >= 1
    assert spans[0][0] >= 4.0 and spans[-1][1] <= 5 + len(speech) / rate + 1.0
    assert spans[0][0] <= 5.3 and spans[-1][1] >= 5 + len(speech) / rate - 0.6
    assert speech_spans(bytes(rate * 2 * 5), rate) == ()
