"""PBX handles (``ui_bridge/pbxs.py``) for tests that wire the panel's parts by hand, without a daemon."""

from __future__ import annotations

from asterisk.connection import AmiNotConnected, AmiResponse
from asterisk.messages import AmiMessage
from asterisk.settings import PbxSettings
from cti.context import CallView
from ui_bridge.pbxs import PbxHandle


async def no_pbx(msg: AmiMessage) -> AmiResponse:
    """A PBX that is never connected: what call control meets before the daemon's first login."""
    raise AmiNotConnected(f"{msg.action}: no PBX in this test")


def calls_only(pbx: PbxSettings, calls: CallView) -> PbxHandle:
    """A PBX the panel sees only through its calls in progress (no agents, no AMI link)."""
    return PbxHandle(pbx, calls, agent_states=list, member_interfaces=lambda _ext: {}, send_action=no_pbx,
                     connected=lambda: False)
