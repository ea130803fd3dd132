"""The supervisor's alert rules (cti/alerts.py): each kind at its threshold and not before, off at 0, resolved when
its condition ends, raised again as a new alert when it comes back; the service level ignoring a window with too
few calls."""

from __future__ import annotations

from cti.alerts import Thresholds, WindowCall, changes, conditions
from cti.effects import AgentStateChanged
from cti.records import MissedEntry
from cti.service_level import QueueCall, WaitingCaller

NOW = 1_800_000_000.0


def waiting(since: float, linkedid: str = "1795479383.16", pbx: str = "main") -> WaitingCaller:
    return WaitingCaller(pbx=pbx, queue="support", linkedid=linkedid, caller="79990001122",
                         caller_name="Смирнов Кирилл", since=since)


def agent(state: str, paused: bool, at: float, extension: str = "101") -> AgentStateChanged:
    return AgentStateChanged(extension=extension, name="Анна Смирнова", state=state, paused=paused,
                             paused_reason="break" if paused else None,
                             paused_queues=("support",) if paused else (), queues=("support",),
                             device_state="NOT_INUSE", at=at)


def entry(missed_at: float, entry_id: int = 17, reason: str = "abandoned", status: str = "open") -> MissedEntry:
    return MissedEntry(linkedid="1795479383.16", caller="79990001122", caller_key="79990001122",
                       caller_name="Смирнов Кирилл", called="74951234567", queue="support", reason=reason,
                       missed_at=missed_at, ring_seconds=8.0, id=entry_id, status=status)  # type: ignore[arg-type]


def call(ended_at: float, wait: float, answered: bool, *, short: bool = False, queue: str = "support") -> WindowCall:
    return WindowCall(ended_at, QueueCall(queue=queue, pbx="main", arrived_at=ended_at - wait - 30,
                                          wait_seconds=wait, answered=answered, abandoned=not answered and not short,
                                          short_abandon=short, talk_seconds=30.0 if answered else 0.0,
                                          answered_by="101" if answered else None))


def test_a_caller_waiting_raises_at_the_threshold_and_not_before() -> None:
    rules = Thresholds(long_wait_seconds=60)
    assert conditions(NOW, rules, waiting=[waiting(NOW - 59.9)]) == {}
    found = conditions(NOW, rules, waiting=[waiting(NOW - 60)])
    [(key, condition)] = found.items()
    assert key == "long_wait:main:1795479383.16" and condition.kind == "long_wait"
    assert condition.subject == "79990001122" and condition.since == NOW - 60
    assert condition.figures["wait_seconds"] == 60.0 and condition.figures["caller_name"] == "Смирнов Кирилл"
    assert conditions(NOW, Thresholds(long_wait_seconds=0), waiting=[waiting(NOW - 3600)]) == {}  # off


def test_the_same_linkedid_on_two_pbxs_is_two_conditions() -> None:
    found = conditions(NOW, Thresholds(long_wait_seconds=10),
                       waiting=[waiting(NOW - 20, pbx="msk"), waiting(NOW - 20, pbx="spb")])
    assert sorted(found) == ["long_wait:msk:1795479383.16", "long_wait:spb:1795479383.16"]


def test_an_agent_paused_too_long_and_not_while_on_a_call_or_unpaused() -> None:
    rules = Thresholds(paused_seconds=15 * 60)
    assert conditions(NOW, rules, agents=[agent("paused", True, NOW - 15 * 60 + 1)]) == {}
    [condition] = conditions(NOW, rules, agents=[agent("paused", True, NOW - 15 * 60)]).values()
    assert condition.key == "paused:main:101" and condition.figures["reason"] == "break"
    # On a call while paused (a direct call still reaches a paused agent): working, not an idle pause.
    assert conditions(NOW, rules, agents=[agent("in_call", True, NOW - 3600)]) == {}
    assert conditions(NOW, rules, agents=[agent("idle", False, NOW - 3600)]) == {}
    assert conditions(NOW, Thresholds(paused_seconds=0), agents=[agent("paused", True, NOW - 86400)]) == {}


def test_a_missed_call_not_called_back_in_time_and_never_a_short_abandon_or_a_closed_entry() -> None:
    rules = Thresholds(missed_seconds=30 * 60)
    assert conditions(NOW, rules, open_missed=[entry(NOW - 30 * 60 + 1)]) == {}
    [condition] = conditions(NOW, rules, open_missed=[entry(NOW - 30 * 60)]).values()
    assert condition.key == "missed:main:17" and condition.figures["missed_id"] == 17
    assert conditions(NOW, rules, open_missed=[entry(NOW - 3600, reason="short_abandon")]) == {}
    assert conditions(NOW, rules, open_missed=[entry(NOW - 3600, status="closed")]) == {}


def test_the_service_level_alarms_under_its_threshold_over_enough_calls_in_the_window() -> None:
    rules = Thresholds(service_level_below=80, service_level_within=20, service_level_window=1800,
                       service_level_min_calls=10)
    seven_good = [call(NOW - 60 * i, wait=5, answered=True) for i in range(7)]
    three_lost = [call(NOW - 60 * i - 30, wait=50, answered=False) for i in range(3)]
    [condition] = conditions(NOW, rules, window=seven_good + three_lost).values()  # 7 of 10: 70 %
    assert condition.key == "service_level:main:support" and condition.since is None
    assert (condition.figures["service_level"], condition.figures["counted_calls"],
            condition.figures["answered_within"]) == (70.0, 10, 7)
    eight_good = [call(NOW - 60 * i, wait=5, answered=True) for i in range(8)]
    two_lost = three_lost[:2]
    assert conditions(NOW, rules, window=eight_good + two_lost) == {}  # 80 %: not under 80


def test_one_lost_call_alone_in_the_window_is_no_alarm() -> None:
    rules = Thresholds(service_level_below=80, service_level_min_calls=10)
    early = [call(NOW - 10, wait=40, answered=False)]  # 0 %, over one call
    assert conditions(NOW, rules, window=early) == {}
    # Short abandons are not counted towards the minimum either.
    shorts = [call(NOW - 5 - i, wait=1, answered=False, short=True) for i in range(20)]
    assert conditions(NOW, rules, window=early + shorts) == {}
    assert conditions(NOW, Thresholds(service_level_below=80, service_level_min_calls=1), window=early) != {}


def test_calls_that_ended_before_the_window_do_not_count() -> None:
    rules = Thresholds(service_level_below=80, service_level_window=1800, service_level_min_calls=2)
    old = [call(NOW - 1801, wait=90, answered=False) for _ in range(5)]
    recent = [call(NOW - 100, wait=5, answered=True) for _ in range(2)]
    assert conditions(NOW, rules, window=old + recent) == {}
    assert conditions(NOW - 1000, rules, window=old) != {}  # an earlier evaluation saw them in its window


def test_an_alert_is_raised_once_resolved_when_its_condition_ends_and_raised_anew_when_it_comes_back() -> None:
    rules = Thresholds(long_wait_seconds=60)
    active: set[str] = set()

    def evaluate(now: float, callers: list[WaitingCaller]) -> tuple[list[str], list[str]]:
        step = changes(active, conditions(now, rules, waiting=callers))
        active.difference_update(step.resolved)
        active.update(c.key for c in step.raised)
        return [c.key for c in step.raised], list(step.resolved)

    caller = waiting(NOW - 30)
    assert evaluate(NOW, [caller]) == ([], [])
    assert evaluate(NOW + 30, [caller]) == (["long_wait:main:1795479383.16"], [])
    assert evaluate(NOW + 31, [caller]) == ([], [])  # not every tick
    assert evaluate(NOW + 40, []) == ([], ["long_wait:main:1795479383.16"])  # answered: resolved
    assert evaluate(NOW + 41, []) == ([], [])
    assert evaluate(NOW + 42, [caller]) == (["long_wait:main:1795479383.16"], [])  # back: a new alert
