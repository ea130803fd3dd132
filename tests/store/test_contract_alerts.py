"""The supervisor's alerts kept by the store, against the interface (every store runs this suite: tests/store/conftest).

What a supervisor relies on: an alert raised once per condition, acknowledged once (the second supervisor learns who
did it), resolved and kept, a condition coming back being a new alert, and the history read back newest first, a
page at a time, after the store is closed and opened again (a restart).
"""

from __future__ import annotations

import pytest

from cti.alerts import Condition
from store.repository import AlertAlreadyAcknowledged, AlertNotFound, Store
from tests.store.builders import T0
from tests.store.conftest import OpenStore


def long_wait(linkedid: str = "1795479383.16", pbx: str = "main") -> Condition:
    return Condition(key=f"long_wait:{pbx}:{linkedid}", kind="long_wait", pbx=pbx, subject="79990001122",
                     since=T0 - 95.5, figures={"queue": "support", "caller": "79990001122",
                                               "caller_name": "Смирнов Кирилл", "wait_seconds": 95.5,
                                               "threshold_seconds": 60.0, "linkedid": linkedid})


def service_level(queue: str = "support", pbx: str = "main") -> Condition:
    return Condition(key=f"service_level:{pbx}:{queue}", kind="service_level", pbx=pbx, subject=queue, since=None,
                     figures={"queue": queue, "service_level": 62.5, "counted_calls": 16, "answered_within": 10})


async def test_an_alert_is_raised_once_per_condition_and_reads_back_as_raised(store: Store) -> None:
    alert, new = await store.raise_alert(long_wait(), at=T0)
    assert new and alert.id > 0 and alert.active
    assert (alert.key, alert.kind, alert.pbx, alert.subject, alert.since, alert.raised_at) == (
        "long_wait:main:1795479383.16", "long_wait", "main", "79990001122", T0 - 95.5, T0)
    assert alert.figures == long_wait().figures  # Cyrillic, floats and text as given
    again, new = await store.raise_alert(long_wait(), at=T0 + 1)
    assert not new and again == alert
    assert await store.get_alert(alert.id) == alert
    assert await store.active_alerts() == [alert]


async def test_acknowledged_once_and_the_second_supervisor_learns_who_did_it(store: Store) -> None:
    alert, _ = await store.raise_alert(long_wait(), at=T0)
    seen = await store.acknowledge_alert(alert.id, "boss", at=T0 + 5)
    assert (seen.acknowledged_by, seen.acknowledged_at, seen.active) == ("boss", T0 + 5, True)
    with pytest.raises(AlertAlreadyAcknowledged) as late:
        await store.acknowledge_alert(alert.id, "anna", at=T0 + 6)
    assert late.value.alert.acknowledged_by == "boss"
    assert await store.active_alerts() == [seen]  # acknowledged is not resolved: the condition still holds
    with pytest.raises(AlertNotFound):
        await store.acknowledge_alert(alert.id + 1000, "boss", at=T0)
    with pytest.raises(AlertNotFound):
        await store.get_alert(alert.id + 1000)
    with pytest.raises(AlertNotFound):
        await store.resolve_alert(alert.id + 1000, at=T0)


async def test_resolved_alerts_stay_in_the_history_and_a_condition_that_comes_back_is_a_new_alert(
        store: Store) -> None:
    first, _ = await store.raise_alert(long_wait(), at=T0)
    resolved = await store.resolve_alert(first.id, at=T0 + 30)
    assert resolved.resolved_at == T0 + 30 and not resolved.active
    assert await store.resolve_alert(first.id, at=T0 + 99) == resolved  # resolving twice changes nothing
    assert await store.active_alerts() == []
    second, new = await store.raise_alert(long_wait(), at=T0 + 60)
    assert new and second.id > first.id
    # Acknowledged after it was resolved: the history says who saw it, even late.
    late = await store.acknowledge_alert(first.id, "boss", at=T0 + 70)
    assert late.resolved_at == T0 + 30 and late.acknowledged_by == "boss"
    assert [a.id for a in await store.list_alerts()] == [second.id, first.id]
    assert [a.id for a in await store.list_alerts(active=True)] == [second.id]
    assert [a.id for a in await store.list_alerts(active=False)] == [first.id]


async def test_the_history_pages_newest_first_and_keeps_pbxs_apart(store: Store) -> None:
    raised = []
    for i in range(5):
        alert, _ = await store.raise_alert(long_wait(f"1795479383.{i}", pbx="msk" if i % 2 else "spb"), at=T0 + i)
        raised.append(alert)
    sl, _ = await store.raise_alert(service_level(pbx="msk"), at=T0 + 10)
    newest_first = [sl, *reversed(raised)]
    page1 = await store.list_alerts(limit=4)
    page2 = await store.list_alerts(limit=4, before=page1[-1].id)
    assert page1 + page2 == newest_first and len(page2) == 2
    assert await store.list_alerts(limit=4, before=page2[-1].id) == []
    assert [a.pbx for a in await store.list_alerts(pbxs=["msk"])] == ["msk", "msk", "msk"]
    assert await store.list_alerts(pbxs=[]) == []
    assert [a.key for a in await store.active_alerts(pbxs=["msk"])] == [
        "long_wait:msk:1795479383.1", "long_wait:msk:1795479383.3", "service_level:msk:support"]
    # The same key on another PBX is another condition.
    other, new = await store.raise_alert(service_level(pbx="spb"), at=T0 + 11)
    assert new and other.id != sl.id
    assert sl.since is None and sl.figures["service_level"] == 62.5


async def test_the_history_survives_a_restart(open_store: OpenStore) -> None:
    store = await open_store()
    alert, _ = await store.raise_alert(long_wait(), at=T0)
    seen = await store.acknowledge_alert(alert.id, "boss", at=T0 + 5)
    await store.close()
    reopened = await open_store()
    assert await reopened.active_alerts() == [seen]
    _, new = await reopened.raise_alert(long_wait(), at=T0 + 10)
    assert not new  # a condition still active after a restart is the same alert, not a second one
