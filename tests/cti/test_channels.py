"""One reading of channel names for the call model and the agent board (cti/channels.py).

The names are those of the shared traces (``../shared/ami-traces``) and of the PBX's config (``pbx-conf/``).
"""

from __future__ import annotations

import pytest

from cti.channels import agent_of_channel_name, channel_agent, classify, endpoint_agent, local_agent
from cti.model import ModelConfig

CONFIG = ModelConfig()


@pytest.mark.parametrize(("name", "kind", "agent"), [
    ("PJSIP/101-0000002c", "agent", "101"),  # 16-click-to-call-answered
    ("PJSIP/trunk-0000002d", "trunk", None),
    ("Local/104@agents-00000010;1", "local", None),  # the sales queue's member
    ("Local/104@agents-00000010;2", "local", None),
    ("Queue:support_pause_PJSIP/101", "other", None),  # a device, never a phone
    ("Message/ast_msg_queue", "other", None),
])
def test_classify(name: str, kind: str, agent: str | None) -> None:
    assert classify(name, CONFIG) == (kind, agent)
    assert channel_agent(name, CONFIG) == agent


def test_a_trunk_endpoint_with_a_dash_in_its_name() -> None:
    config = ModelConfig(trunks=frozenset({"sip-provider"}))
    assert classify("PJSIP/sip-provider-000000a1", config) == ("trunk", None)


def test_local_halves_stand_for_their_extension() -> None:
    """A Local channel is plumbing, but an attended transfer's target names the agent through it."""
    assert agent_of_channel_name("Local/104@transfer-00000001;1", CONFIG) == "104"
    assert local_agent("Local/104@agents", CONFIG) == "104"
    assert local_agent("PJSIP/104", CONFIG) is None
    assert agent_of_channel_name("PJSIP/trunk-0000002d", CONFIG) is None
    assert endpoint_agent("PJSIP/105", CONFIG) == "105" and endpoint_agent("Local/104@agents", CONFIG) is None

