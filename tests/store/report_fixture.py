"""A fixed fixture of calls and contacts for the reports, with the figures each report must give worked out by hand.

Two days in Moscow (2026-03-10 and 03-11) on two PBXs (``main``, ``spb``), agents 101 and 102:

=====  ============================  =======================================================================
call   when (from 10:00 on day 1)     what
=====  ============================  =======================================================================
c1     day 1 +0                       inbound from 79161111111, answered by 101 on main, recording c1.wav: contact K1
c2     day 1 +600 s                   inbound from 79162222222, answered by 101 on main, c2.wav: **no contact**
c8     day 1 +300 s                   inbound answered by 101 on **spb**: no contact
c4     day 1 +1200 s                  inbound from 79163333333 missed (no_answer; 101 and 102 rang): called back
c5     day 1 +3000 s                  outbound answered to 79163333333 (answered 5 s in): closes c4's entry, 1805 s
c3     day 2 +0                       inbound from 79161111111 (the repeat client), answered by 102: contact K3
c6     day 2 +100 s                   inbound from 79164444444 missed (abandoned; 102 rang): **never called back**
c9     day 2 +2000 s                  inbound from 79166666666 missed (no_answer; 101 busy)
c10    day 2 +2595 s                  outbound answered to 79166666666: closes c9's entry, 600 s
=====  ============================  =======================================================================

Contacts (the shipped example script followed by the runner):

* K1 day 1 +10 s, phone, c1, agent 101: a new private client (request); a **booking** set later, **no visit**.
* K2 day 1 +3600 s, a walk-in **visit** channel, **no call**, agent 101: parts (request); its visit set (no booking).
* K3 day 2 +10 s, phone, c3, agent 102: the client of K1 again: a **repeat** client (request, booking, visit).
* K4 day 2 +500 s, phone by hand (a call-back), no call linked, agent 102: other (no stage).
"""

from __future__ import annotations

from cti.reports import ReportQuery
from store.repository import Store
from tests.store.builders import agent_miss, make_call, missed_for
from tests.store.contact_drafts import follow

#: 2026-03-10 10:00 Moscow time.
T0 = 1773126000.0
DAY = 86400.0
#: 2026-03-10 00:00 and 2026-03-12 00:00 Moscow time: the fixture's two days.
DAY1 = T0 - 10 * 3600
DAY3 = DAY1 + 2 * DAY


async def fill(store: Store) -> dict[str, int]:
    """Write the fixture; the registered contacts' ids by name."""
    c1 = make_call("c1", caller="79161111111", answered=True, answered_by="101", started_at=T0, recording="c1.wav")
    c2 = make_call("c2", caller="79162222222", answered=True, answered_by="101", started_at=T0 + 600,
                   recording="c2.wav", caller_name="Петров")
    c8 = make_call("c8", caller="79167777777", answered=True, answered_by="101", started_at=T0 + 300, pbx="spb")
    c4 = make_call("c4", caller="79163333333", started_at=T0 + 1200)
    c5 = make_call("c5", direction="outbound", caller="101", called="89163333333", answered=True,
                   answered_by="101", started_at=T0 + 3000)
    c3 = make_call("c3", caller="79161111111", answered=True, answered_by="102", started_at=T0 + DAY)
    c6 = make_call("c6", caller="79164444444", started_at=T0 + DAY + 100, missed_reason="abandoned")
    c9 = make_call("c9", caller="79166666666", started_at=T0 + DAY + 2000)
    c10 = make_call("c10", direction="outbound", caller="102", called="89166666666", answered=True,
                    answered_by="102", started_at=T0 + DAY + 2595)
    store.stage_call(c1, None, [])
    store.stage_call(c8, None, [])
    store.stage_call(c2, None, [])
    store.stage_call(c4, missed_for(c4), [agent_miss(c4, "101"), agent_miss(c4, "102")])
    store.stage_call(c5, None, [])
    store.stage_call(c3, None, [])
    store.stage_call(c6, missed_for(c6), [agent_miss(c6, "102")])
    store.stage_call(c9, missed_for(c9), [agent_miss(c9, "101", reason="busy")])
    store.stage_call(c10, None, [])
    await store.flush()

    k1 = await store.save_contact(follow("private_new", at=T0 + 10, linkedid="c1", caller="79161111111"),
                                  repeat_days=180, run_id="k1")
    await store.set_contact_stage(k1.id, "booking", at=T0 + 7200, by="dms", external_id="B-1")
    k2 = await store.save_contact(follow("parts", at=T0 + 3600, linkedid=None, caller=None, channel="visit"),
                                  repeat_days=180, run_id="k2")
    await store.set_contact_stage(k2.id, "visit", at=T0 + 5400, by="dms", external_id="V-2")
    assert k1.client_id is not None
    k3 = await store.save_contact(
        follow("private_known", at=T0 + DAY + 10, linkedid="c3", caller="79161111111", agent="102",
               contact_id=k1.client_id, answers={"private_client": {"contact_id": k1.client_id, "found_by": "number"}}),
        repeat_days=180, run_id="k3")
    await store.set_contact_stage(k3.id, "booking", at=T0 + DAY + 900, by="dms", external_id="B-3")
    await store.set_contact_stage(k3.id, "visit", at=T0 + 3 * DAY, by="dms", external_id="V-3")
    k4 = await store.save_contact(follow("other", at=T0 + DAY + 500, linkedid=None, caller="79165555555",
                                         agent="102"), repeat_days=180, run_id="k4")
    return {"K1": k1.id, "K2": k2.id, "K3": k3.id, "K4": k4.id}


def period(**overrides: object) -> ReportQuery:
    """The fixture's two days, in Moscow."""
    from zoneinfo import ZoneInfo

    fields: dict[str, object] = {"since": DAY1, "until": DAY3, "tz": ZoneInfo("Europe/Moscow")}
    fields.update(overrides)
    return ReportQuery(**fields)  # type: ignore[arg-type]
