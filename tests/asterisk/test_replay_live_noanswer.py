"""The live replay's transfer target that never answers (``LiveCalls.unanswered``): the dial times out, as on the lab.

Held against 15-blind-transfer-noanswer, where the real PBX's transfer context gave up on 105 after its 15 s
``Dial``: ``DialEnd`` ``NOANSWER``, the dialplan's ``Hangup()``, 105's ``Hangup`` (cause 0) and the customer's. An
attended transfer (``Atxfer``) to such a phone leaves the agent talking to the customer, until the customer hangs up.
"""

from __future__ import annotations

from asterisk.messages import action
from tests.asterisk.conftest import TRACES
from tests.asterisk.test_replay_live import AGENT, CUSTOMER, answered_transfer_call, drain, keys_of

NOANSWER = TRACES / "15-blind-transfer-noanswer"


async def test_a_redirect_to_a_phone_that_never_answers_times_out_and_the_customer_is_hung_up(
        replay_pbx, ami_client) -> None:
    pbx, client, _ = await answered_transfer_call(replay_pbx, ami_client)
    assert pbx.live is not None
    pbx.live.unanswered.add("105")
    response, _ = await client.request(action("Redirect", Channel=CUSTOMER, Context="transfer", Exten="105",
                                              Priority="1"))
    assert response.response == "Success"
    events = await drain(client)
    names = [m.event for m in events]
    rang = names.index("DialState")
    # What the real PBX sent when its 15 s Dial gave up on 105 (15-blind-transfer-noanswer), in that order.
    assert names[rang + 1:] == ["DialEnd", "Newexten", "SoftHangupRequest", "Hangup", "Hangup"]
    end, hangup_app, _soft, target, customer = events[rang + 1:]
    leg = next(m for m in events if m.event == "Newchannel")["Channel"]
    assert (end["Channel"], end["DestChannel"], end["DialStatus"]) == (CUSTOMER, leg, "NOANSWER")
    assert (hangup_app["Channel"], hangup_app["Application"]) == (CUSTOMER, "Hangup")
    assert (target["Channel"], target["Cause"], target["Cause-txt"], target["ChannelStateDesc"]) == (
        leg, "0", "Unknown", "Ringing")
    assert (customer["Channel"], customer["Cause"]) == (CUSTOMER, "16")
    for m in events[rang + 1:]:
        assert [k for k, _ in m.headers] == keys_of(NOANSWER, m.event), m.event
    assert "Newstate" not in names[rang + 1:], "105 never went off hook"

    # The rest of the recording adds nothing of the call: the customer is gone already.
    pbx.resume()
    after = await drain(client)
    assert {m.get("Channel") for m in after} & {AGENT, CUSTOMER, leg} == set()


async def test_an_atxfer_to_a_phone_that_never_answers_leaves_the_agent_with_the_customer(
        replay_pbx, ami_client) -> None:
    pbx, client, _ = await answered_transfer_call(replay_pbx, ami_client)
    assert pbx.live is not None
    pbx.live.unanswered.add("105")
    response, _ = await client.request(action("Atxfer", Channel=AGENT, Context="transfer", Exten="105"))
    assert response.response == "Success"
    events = await drain(client)
    dial = next(m for m in events if m.event == "DialBegin")
    assert dial["Channel"] == AGENT
    end = next(m for m in events if m.event == "DialEnd")
    assert (end["Channel"], end["DestChannel"], end["DialStatus"]) == (AGENT, dial["DestChannel"], "NOANSWER")
    assert [(m["Channel"], m["Cause"]) for m in events if m.event == "Hangup"] == [(dial["DestChannel"], "0")]
    assert not [m for m in events if m.event in ("AttendedTransfer", "BridgeLeave", "BridgeEnter")], \
        "the agent and the customer stay in their bridge"

    # When the customer hangs up (the recording's own hang-up), the agent's leg ends with the call.
    pbx.resume()
    after = await drain(client)
    hangups = [m["Channel"] for m in after if m.event == "Hangup"]
    assert hangups == [AGENT, CUSTOMER]
    assert dial["DestChannel"] not in {m.get("Channel") for m in after}
