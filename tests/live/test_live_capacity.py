"""``[live]``'s defaults fit the measured capacity of one live worker, and a configuration asking more is told so."""

from __future__ import annotations

from ui_bridge.live_settings import LANES_PER_WORKER, LiveSettings


def test_the_defaults_fit_one_worker() -> None:
    settings = LiveSettings()
    assert settings.workers == 1 and settings.lanes <= LANES_PER_WORKER
    assert settings.capacity_warning() is None


def test_more_taps_than_the_workers_decode_on_time_says_what_to_set() -> None:
    warning = LiveSettings(max_taps=8, workers=1).capacity_warning()
    assert warning is not None
    assert "16 lanes" in warning and "workers = 4" in warning and "max_taps = 2" in warning
    assert LiveSettings(max_taps=8, workers=4).capacity_warning() is None


def test_mixed_lanes_count_one_per_call() -> None:
    assert LiveSettings(max_taps=4, split_lanes=False).capacity_warning() is None
    warning = LiveSettings(max_taps=5, split_lanes=False).capacity_warning()
    assert warning is not None and "workers = 2" in warning and "max_taps = 4" in warning
