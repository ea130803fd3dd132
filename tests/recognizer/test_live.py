"""The live recogniser over real worker processes and the Korean Vosk model: a tapped call's lanes fed as a tap feeds
them, partials and finals read back as the daemon reads them.

The Korean model (the only Vosk speech model here) writes Korean words for English audio: these tests check what
does not depend on the words being right (the partial -> final sequence, each word's place on the tap's clock, each
utterance settled while the call is up, a worker's death, back-pressure, a lane's release). ``call_02_en.wav`` is
played at its own pace, 20 ms frame by 20 ms frame; every wait is bounded by the suite's time unit. How fast a final
comes (the issue's 1.5 s) is measured by ``bench/live.py``, not asserted here: on a loaded machine it is the load's.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from cti.live import Lane, LiveResult, TapInfo
from cti.transcripts import EngineChoice
from recognizer.live import LiveLaneError, LiveModel, LiveRecognizer, LiveWorkers
from tests.conftest import UNIT
from tests.recognizer.live_audio import FRAME_SECONDS, TappedCall, tapped_call

#: A word's edges as the model places them may stray this far outside its clip's bounds (seconds).
SLACK = 0.35


@pytest.fixture(scope="module")
def call() -> TappedCall:
    return tapped_call()


@pytest.fixture
def model(ko_model: Path) -> LiveModel:
    return LiveModel(EngineChoice("vosk", ko_model.name, None), str(ko_model))


def tap(lane: Lane, n: int = 1) -> TapInfo:
    return TapInfo(pbx="main", linkedid=f"1795479360.{n}", lane=lane, started_at=time.time(), tap_id=f"tap-{n}-{lane}")


async def collect(recogniser: LiveRecognizer, arrived: list[tuple[float, LiveResult]]) -> None:
    async for result in recogniser:
        arrived.append((time.monotonic(), result))


def inside(result: LiveResult, spans: list[tuple[float, float]]) -> bool:
    """Every word of the result lies in one of the lane's utterances (times on the tap's clock)."""
    return all(any(s - SLACK <= w.start <= w.end <= e + SLACK for s, e in spans) for w in result.words)


async def warm(live: LiveWorkers, model: LiveModel) -> None:
    """Load the model in every worker before the clock starts (a lane opened on it settles an empty close)."""
    await live.preload([model])
    lanes = [live.open(tap("agent", 900 + i), model) for i in range(live.size)]
    async with asyncio.timeout(120 * UNIT):
        for lane in lanes:
            await lane.close(within=120 * UNIT)
            assert lane.error is None


def settled(results: list[tuple[float, LiveResult]], spans: list[tuple[float, float]]) -> bool:
    """Each utterance of the lane has a final within its bounds."""
    finals = [r for _, r in results if r.final]
    return all(any(f.start >= s - SLACK and f.end <= e + SLACK for f in finals) for s, e in spans)


async def test_partials_grow_and_a_final_settles_each_utterance_while_the_call_is_up(
        call: TappedCall, model: LiveModel) -> None:
    """Both lanes of a call fed at its own pace: partials grow, then a final settles each utterance, where it was
    said, in order, and each final comes from the pause that ends it while the call is still up (not from the
    hang-up). How soon (the issue's 1.5 s from a word to its final) is a speed target: ``bench/live.py`` measures it
    (word -> final, median and 90th percentile, against one lane alone), on a machine whose load it reports.

    ``max_lag`` is generous here: back-pressure is not what this test checks (the one feeding five times too fast
    does); on a loaded machine the worker falls seconds behind the audio and its results come later, not fewer.
    """
    async with LiveWorkers(1, max_lag=120.0) as live:
        await warm(live, model)
        lanes: dict[Lane, LiveRecognizer] = {lane: live.open(tap(lane), model) for lane in ("agent", "customer")}
        arrived: dict[Lane, list[tuple[float, LiveResult]]] = {lane: [] for lane in lanes}
        readers = [asyncio.create_task(collect(rec, arrived[lane])) for lane, rec in lanes.items()]
        frames = {lane: call.frames(lane) for lane in lanes}
        started = time.monotonic()
        for i in range(len(frames["agent"])):
            delay = started + i * FRAME_SECONDS - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            for lane, rec in lanes.items():
                assert rec.feed(frames[lane][i])
        # The call is still up (each lane's audio ends in more than 1 s of silence): every utterance is settled by
        # the pause that ends it, before anything is closed.
        async with asyncio.timeout(60 * UNIT):
            while not all(settled(arrived[lane], call.spans(lane)) for lane in lanes):
                await asyncio.sleep(0.05)
        while_up = {lane: len(results) for lane, results in arrived.items()}
        async with asyncio.timeout(30 * UNIT):
            for rec in lanes.values():
                await rec.close()
            await asyncio.gather(*readers)
        assert all(rec.dropped_seconds == 0 for rec in lanes.values())

    for lane, results in arrived.items():
        finals = [r for _, r in results if r.final]
        spans = call.spans(lane)
        # Each utterance of the lane was settled while the call was up, and every word of every result is where it
        # was said.
        assert settled(results[:while_up[lane]], spans), (lane, spans, finals)
        assert all(inside(r, spans) for _, r in results), (lane, results)
        # Partials grow until their final: none follows a final into the time it settled.
        settled_until = 0.0
        partials_seen = 0
        for _, result in results:
            assert result.start >= settled_until - 1e-6, (lane, result)
            assert result.words
            if result.final:
                assert result.text == " ".join(w.text for w in result.words)
                settled_until = result.end
            else:
                partials_seen += 1
        # Partials came before the finals (the model grows few: a partial is sent only when its words change; a worker
        # more than 0.5 s behind thins them to one per second of an utterance, so even a starved one shows some).
        assert partials_seen >= 1, f"the {lane} lane grew no partials: {results}"


async def test_a_worker_killed_mid_stream_ends_its_lanes_with_the_reason_and_the_others_go_on(
        call: TappedCall, model: LiveModel) -> None:
    async with LiveWorkers(2, max_lag=60.0) as live:
        await warm(live, model)
        doomed = live.open(tap("agent", 1), model)
        spared = live.open(tap("agent", 2), model)
        assert doomed.worker_pid != spared.worker_pid  # the fewest-lanes worker takes each new lane
        first: dict[str, list[tuple[float, LiveResult]]] = {"doomed": [], "spared": []}
        readers = {name: asyncio.create_task(collect(rec, first[name]))
                   for name, rec in (("doomed", doomed), ("spared", spared))}
        for frame in call.frames("agent", until=8.0):  # the first utterance and a pause: its final comes
            doomed.feed(frame)
            spared.feed(frame)
        async with asyncio.timeout(30 * UNIT):
            while not (any(r.final for _, r in first["doomed"]) and any(r.final for _, r in first["spared"])):
                await asyncio.sleep(0.05)
        assert doomed.worker_pid is not None
        os.kill(doomed.worker_pid, signal.SIGKILL)
        async with asyncio.timeout(30 * UNIT):
            with pytest.raises(LiveLaneError, match=r"^the worker process died \(signal SIGKILL\)$"):
                await readers["doomed"]
        assert doomed.ended and not doomed.feed(call.frames("agent")[0])
        # The other worker's lane goes on: the rest of the call, then closed, settles its next utterances.
        before = len([r for _, r in first["spared"] if r.final])
        for frame in call.frames("agent")[int(8.0 / FRAME_SECONDS):]:
            assert spared.feed(frame)
        async with asyncio.timeout(60 * UNIT):
            await spared.close()
            await readers["spared"]
        assert spared.error is None
        assert len([r for _, r in first["spared"] if r.final]) > before
        # A new worker took the dead one's place, and takes new lanes.
        async with asyncio.timeout(30 * UNIT):
            while len(live.pids) < 2:
                await asyncio.sleep(0.05)
        assert live.deaths == 1
        fresh = live.open(tap("customer", 3), model)
        arrived: list[tuple[float, LiveResult]] = []
        reader = asyncio.create_task(collect(fresh, arrived))
        for frame in call.frames("customer", until=11.0):
            fresh.feed(frame)
        async with asyncio.timeout(120 * UNIT):
            await fresh.close(within=120 * UNIT)
            await reader
        assert fresh.error is None and any(r.final for _, r in arrived)


async def test_fed_faster_than_real_time_the_lag_stays_bounded_partials_go_first_and_finals_still_come(
        call: TappedCall, model: LiveModel) -> None:
    max_lag = 2.0
    async with LiveWorkers(1, max_lag=max_lag) as live:
        await warm(live, model)
        rec = live.open(tap("customer"), model)
        arrived: list[tuple[float, LiveResult]] = []
        reader = asyncio.create_task(collect(rec, arrived))
        frames = call.frames("customer")
        taken = 0
        worst = 0.0
        # Five times the audio's pace: the worker cannot keep up.
        started = time.monotonic()
        for i, frame in enumerate(frames):
            delay = started + i * FRAME_SECONDS / 5 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            taken += rec.feed(frame)
            worst = max(worst, rec.lag)
        async with asyncio.timeout(30 * UNIT):
            await rec.close()
            await reader
    assert worst <= max_lag + 1e-9, worst  # what waits for the worker never grows past the bound
    assert rec.dropped_seconds > 0 and taken < len(frames)
    assert abs(rec.fed_seconds + rec.dropped_seconds - len(frames) * FRAME_SECONDS) < 0.05
    assert rec.partials_skipped > 0  # behind, the worker skipped partials...
    finals = [r for _, r in arrived if r.final]
    assert finals  # ...and still settled utterances
    assert all(inside(r, call.spans("customer")) for _, r in arrived)  # on the tap's clock across the gaps


async def test_close_settles_the_last_words_and_releases_the_lane_in_the_worker(
        call: TappedCall, model: LiveModel) -> None:
    async with LiveWorkers(1, name="cti-live-closing") as live:
        await warm(live, model)
        (pid,) = live.pids
        cut = live.open(tap("agent", 1), model)
        other = live.open(tap("customer", 1), model)
        assert live.lanes_per_worker() == {pid: 2}
        arrived: list[tuple[float, LiveResult]] = []
        reader = asyncio.create_task(collect(cut, arrived))
        for frame in call.frames("agent", until=3.5):  # cut mid-utterance: no pause to end it
            cut.feed(frame)
        async with asyncio.timeout(30 * UNIT):
            await cut.close()
            await reader  # the iteration ends after the last words
        assert cut.error is None and not cut.feed(call.frames("agent")[0])
        finals = [r for _, r in arrived if r.final]
        assert len(finals) == 1 and finals[0].end <= 3.5 + 1e-6, finals
        assert live.lanes_per_worker() == {pid: 1}
        assert live.reported_lanes(pid) == 1  # the worker's own count: the lane's recogniser is gone
        async with asyncio.timeout(30 * UNIT):
            await other.close()
        assert live.reported_lanes(pid) == 0 and live.lanes_per_worker() == {pid: 0}
    # Closed, the pool leaves nothing behind: its worker's sender and reader threads have ended too.
    assert not [t.name for t in threading.enumerate() if t.name.startswith("cti-live-closing")]


async def test_a_model_that_cannot_load_ends_the_lane_with_the_reason(tmp_path: Path) -> None:
    missing = LiveModel(EngineChoice("vosk", "vosk-model-small-ru-0.22", "ru"), str(tmp_path / "nowhere"))
    async with LiveWorkers(1) as live:
        rec = live.open(tap("customer"), missing)
        async with asyncio.timeout(30 * UNIT):
            with pytest.raises(LiveLaneError, match="nowhere"):
                async for _ in rec:
                    pass
        assert live.lanes_per_worker() == {live.pids[0]: 0}
