"""Which days of a report's period are whole days of the site's zone (``cti.reports.whole_days``): the store reads
those from its day counts and the rest of the period from the rows, so they must be exactly the local days inside."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from cti.reports import day_of, day_start, local_day, whole_days

MOSCOW = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")


def midnight(tz: ZoneInfo, *date: int) -> float:
    return datetime(*date, tzinfo=tz).timestamp()


def test_a_period_from_midnight_to_midnight_is_all_whole_days() -> None:
    days = whole_days(midnight(MOSCOW, 2026, 3, 10), midnight(MOSCOW, 2026, 3, 12), MOSCOW)
    assert days is not None
    assert (day_of(days.first).isoformat(), day_of(days.end).isoformat()) == ("2026-03-10", "2026-03-12")
    assert (days.start, days.stop) == (midnight(MOSCOW, 2026, 3, 10), midnight(MOSCOW, 2026, 3, 12))


def test_a_day_cut_at_either_end_is_left_to_the_rows() -> None:
    days = whole_days(midnight(MOSCOW, 2026, 3, 10) + 1, midnight(MOSCOW, 2026, 3, 13) - 1, MOSCOW)
    assert days is not None
    assert (day_of(days.first).isoformat(), day_of(days.end).isoformat()) == ("2026-03-11", "2026-03-12")
    # Less than a whole day: none.
    assert whole_days(midnight(MOSCOW, 2026, 3, 10) + 1, midnight(MOSCOW, 2026, 3, 11) + 60, MOSCOW) is None


def test_days_of_23_and_25_hours_start_at_their_midnights() -> None:
    year = whole_days(midnight(BERLIN, 2026, 1, 1), midnight(BERLIN, 2027, 1, 1), BERLIN)
    assert year is not None and year.end - year.first == 365
    spring = local_day(midnight(BERLIN, 2026, 3, 29), BERLIN)
    assert day_start(spring + 1, BERLIN) - day_start(spring, BERLIN) == 23 * 3600
    autumn = local_day(midnight(BERLIN, 2026, 10, 25), BERLIN)
    assert day_start(autumn + 1, BERLIN) - day_start(autumn, BERLIN) == 25 * 3600


def test_a_clock_going_back_at_midnight_makes_a_day_of_25_hours() -> None:
    """São Paulo ended its summer time at midnight on 2018-02-18: 00:00 became 23:00 of the 17th again."""
    sao_paulo = ZoneInfo("America/Sao_Paulo")
    days = whole_days(midnight(sao_paulo, 2018, 2, 15), midnight(sao_paulo, 2018, 2, 20), sao_paulo)
    assert days is not None and days.end - days.first == 5
    long = local_day(midnight(sao_paulo, 2018, 2, 17), sao_paulo)
    assert day_start(long + 1, sao_paulo) - day_start(long, sao_paulo) == 25 * 3600


class BackOverMidnight(tzinfo):
    """A clock at UTC+1 that goes back to UTC-1 at 00:30 local on 2030-01-02: from 00:30 it reads 22:30 of the 1st,
    so the 2nd begins, stops, and begins again."""

    CHANGE = datetime(2030, 1, 1, 23, 30, tzinfo=UTC).timestamp()

    def utcoffset(self, dt: datetime | None) -> timedelta:
        assert dt is not None
        naive = dt.replace(tzinfo=None)
        return timedelta(hours=1) if naive < datetime(2030, 1, 2, 0, 30) and not dt.fold else timedelta(hours=-1)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def fromutc(self, dt: datetime) -> datetime:
        moment = dt.replace(tzinfo=UTC).timestamp()
        hours = 1 if moment < self.CHANGE else -1
        return (dt + timedelta(hours=hours)).replace(tzinfo=self, fold=int(hours < 0 and moment < self.CHANGE + 7200))


def test_a_day_in_two_pieces_leaves_the_period_to_the_rows() -> None:
    zone = BackOverMidnight()
    since = datetime(2029, 12, 30, tzinfo=UTC).timestamp()
    assert local_day(BackOverMidnight.CHANGE - 1, zone) > local_day(BackOverMidnight.CHANGE, zone)
    assert whole_days(since, since + 6 * 86400, zone) is None
    assert whole_days(since, since + 2 * 86400, zone) is not None
