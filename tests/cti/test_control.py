"""Call-control policy, pure: who may transfer, hang up or pause what, and which channel each action names.

The calls are real: snapshots of 13-blind-transfer-redirect and 07-queue-ringall-answered taken from the
model at the moment a panel user would act (ringing, talking), through ``cti.context``.
"""

from __future__ import annotations

import json

import pytest

from asterisk.messages import AmiMessage
from cti import control
from cti.context import enrich
from cti.control import Actor, AttendedTransfer, Redirect, Refused, TransferRules
from cti.effects import CallAnswered, CallContext, CallRang
from cti.model import CallBook, ModelConfig
from tests.traces import trace_dirs

RULES = TransferRules(transfer_context="transfer", external_transfer_context="outbound", internal_number_max_digits=4)
AGENT_101 = Actor("anna", "agent", "101")
AGENT_102 = Actor("oleg", "agent", "102")
ADMIN = Actor("boss", "admin", None)
ADMIN_ON_106 = Actor("supervisor", "admin", "106")
QA = Actor("qa", "qa", None)


def moment(name: str, kind: type[CallRang] | type[CallAnswered], nth: int = 0) -> CallContext:
    """The call's context carried by the ``nth`` effect of ``kind`` in the trace."""
    trace = next(t for t in trace_dirs() if t.name == name)
    book = CallBook(ModelConfig())
    found: list[CallContext] = []
    for line in (trace / "ami.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if isinstance(item.get("msg"), list):
            for effect in enrich(book, book.apply(AmiMessage.from_pairs(item["msg"], received_at=item["t"]))):
                if isinstance(effect, kind) and effect.context is not None:
                    found.append(effect.context)
    return found[nth]


@pytest.fixture(scope="module")
def talking() -> CallContext:
    """13-blind-transfer-redirect: the customer on the trunk, 101 has answered."""
    return moment("13-blind-transfer-redirect", CallAnswered)


@pytest.fixture(scope="module")
def ringing() -> CallContext:
    """07-queue-ringall-answered: the customer waits in queue support; 101, 102 and 105 ring."""
    return moment("07-queue-ringall-answered", CallRang, 2)


def trunk_channel(call: CallContext) -> str:
    return next(c.name for c in call.channels if c.kind == "trunk")


def agent_channel(call: CallContext, ext: str) -> str:
    return next(c.name for c in call.legs if c.agent == ext)


def test_a_blind_transfer_redirects_the_customer_not_the_agent(talking: CallContext) -> None:
    plan = control.plan_transfer(talking, AGENT_101, "104", "blind", RULES)
    assert plan == Redirect(channel=trunk_channel(talking), context="transfer", exten="104")
    assert plan.channel.startswith("PJSIP/trunk-")


def test_an_external_number_goes_to_the_external_transfer_context(talking: CallContext) -> None:
    plan = control.plan_transfer(talking, AGENT_101, "+7 (916) 123-45-67", "blind", RULES)
    assert plan == Redirect(channel=trunk_channel(talking), context="outbound", exten="+79161234567")


def test_an_attended_transfer_dials_from_the_agents_own_channel(talking: CallContext) -> None:
    plan = control.plan_transfer(talking, AGENT_101, "104", "attended", RULES)
    assert plan == AttendedTransfer(channel=agent_channel(talking, "101"), context="transfer", exten="104")


def test_an_admin_not_on_the_call_acts_for_the_agent_who_answered(talking: CallContext) -> None:
    assert control.plan_transfer(talking, ADMIN, "104", "attended", RULES) == AttendedTransfer(
        channel=agent_channel(talking, "101"), context="transfer", exten="104")
    assert control.plan_transfer(talking, ADMIN_ON_106, "104", "blind", RULES).channel == trunk_channel(talking)


def test_an_agent_cannot_touch_a_call_their_phone_is_not_on(talking: CallContext) -> None:
    for attempt in (lambda: control.plan_transfer(talking, AGENT_102, "104", "blind", RULES),
                    lambda: control.plan_hangup(talking, AGENT_102)):
        with pytest.raises(Refused) as refused:
            attempt()
        assert refused.value.code == "forbidden"


def test_qa_controls_nothing(talking: CallContext) -> None:
    with pytest.raises(Refused, match="QA") as refused:
        control.plan_hangup(talking, QA)
    assert refused.value.code == "forbidden"
    with pytest.raises(Refused):
        control.may_control(QA)


def test_an_attended_transfer_needs_an_agent_talking(ringing: CallContext) -> None:
    """While the queue's phones ring nobody talks: nothing to consult from."""
    with pytest.raises(Refused) as refused:
        control.plan_transfer(ringing, AGENT_101, "104", "attended", RULES)
    assert refused.value.code == "conflict"


def test_a_ringing_agent_blind_transfers_the_waiting_customer(ringing: CallContext) -> None:
    assert control.plan_transfer(ringing, AGENT_102, "104", "blind", RULES).channel == trunk_channel(ringing)


def test_hang_up_ends_the_agents_own_leg_and_an_admins_ends_the_customer(talking: CallContext,
                                                                         ringing: CallContext) -> None:
    assert control.plan_hangup(talking, AGENT_101) == agent_channel(talking, "101")
    assert control.plan_hangup(ringing, AGENT_102) == agent_channel(ringing, "102")
    assert control.plan_hangup(talking, ADMIN) == trunk_channel(talking)


def test_who_sees_a_call(ringing: CallContext) -> None:
    assert control.may_see(ringing, AGENT_101) and control.may_see(ringing, AGENT_102)
    assert not control.may_see(ringing, Actor("dmitry", "agent", "104"))
    assert control.may_see(ringing, ADMIN) and control.may_see(ringing, QA)


def test_a_call_not_in_progress_is_not_found() -> None:
    with pytest.raises(Refused) as refused:
        control.in_progress(None, "1795479510.36")
    assert refused.value.code == "not_found"


def test_agents_act_for_their_own_extension_admins_for_any() -> None:
    assert control.acting_extension(AGENT_101, None) == "101"
    assert control.acting_extension(AGENT_101, "101") == "101"
    with pytest.raises(Refused) as refused:
        control.acting_extension(AGENT_101, "102")
    assert refused.value.code == "forbidden"
    assert control.acting_extension(ADMIN, "103") == "103"
    assert control.acting_extension(ADMIN_ON_106, None) == "106"
    with pytest.raises(Refused) as refused:
        control.acting_extension(ADMIN, None)
    assert refused.value.code == "bad_message"


def test_a_pause_names_each_member_interface_once() -> None:
    """104 is in sales as Local/104@agents and in support as its phone: one action per interface."""
    interfaces = {"sales": "Local/104@agents", "support": "PJSIP/104", "support-rr": "PJSIP/104"}
    assert control.pause_targets(interfaces, "PJSIP/104", None) == [("Local/104@agents", None), ("PJSIP/104", None)]
    assert control.pause_targets(interfaces, "PJSIP/104", "sales") == [("Local/104@agents", "sales")]
    assert control.pause_targets({}, "PJSIP/104", "support") == [("PJSIP/104", "support")]
    assert control.pause_targets({}, "PJSIP/104", None) == [("PJSIP/104", None)]


def test_numbers_are_dialled_without_their_formatting() -> None:
    assert control.dialable("+7 (916) 123-45-67") == "+79161234567"
    assert control.dialable("8 916 123 45 67") == "89161234567"
