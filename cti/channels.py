"""What a channel or device name is: a trunk, an agent's phone, a Local half, or something else. No I/O.

The call model (:mod:`cti.model`) and the agent board (:mod:`cti.agents`) both read channel names; they
read them here, so that "is this an agent?" has one answer in the whole daemon. The dial-plan facts come
from ``[pbx]`` (:class:`DialPlan`, which :class:`cti.model.ModelConfig` is).

Rules derived from what a real Asterisk 22 sends (``../shared/ami-traces``):

* A channel name is ``<tech>/<endpoint>-<sequence>`` (``PJSIP/101-0000002c``, ``PJSIP/trunk-0000002d``); a
  device or a member interface is ``<tech>/<endpoint>`` (``PJSIP/101``).
* A **trunk** is a channel whose endpoint is one of ``[pbx] trunks``.
* An **agent** is a phone endpoint (:data:`PHONE_TECHS`) matching ``[pbx] agent_pattern`` in full. Devices
  such as ``Queue:support_pause_PJSIP/101`` are not agents.
* A **Local** half (``Local/104@agents-00000010;1`` / ``;2``) is plumbing: its ``;2`` half's dial to the
  real phone carries the ring and the answer. Its extension names the agent it stands for (a queue member
  ``Local/104@agents``, an attended transfer's ``Local/104@transfer``).
* The **caller** is the first channel of a call (:func:`leg_role`); what the other legs are follows from
  their kind.
"""

from __future__ import annotations

import re
from typing import Literal, Protocol

#: Technologies whose endpoints are phones.
PHONE_TECHS = frozenset({"PJSIP", "SIP", "IAX2"})

ChannelKind = Literal["trunk", "agent", "local", "other"]


class DialPlan(Protocol):
    """The ``[pbx]`` facts that tell channels apart (:class:`cti.model.ModelConfig` is one)."""

    @property
    def trunks(self) -> frozenset[str]: ...

    def is_agent(self, ext: str) -> bool: ...


_PATTERNS: dict[str, re.Pattern[str]] = {}


def matches_in_full(pattern: str, text: str) -> bool:
    """``text`` matches the regular expression ``pattern`` in full (compiled once per pattern)."""
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        compiled = _PATTERNS[pattern] = re.compile(pattern)
    return compiled.fullmatch(text) is not None


def split_channel(name: str) -> tuple[str, str]:
    """``PJSIP/101-0000002c`` -> ``("PJSIP", "101")``: the technology and the endpoint, sequence dropped."""
    tech, _, rest = name.partition("/")
    head, sep, _ = rest.rpartition("-")
    return tech, head if sep else rest


def classify(name: str, plan: DialPlan) -> tuple[ChannelKind, str | None]:
    """The kind of a channel and, for an agent's phone, its extension: ``PJSIP/101-0000002c`` ->
    ``("agent", "101")``, ``PJSIP/trunk-0000002d`` -> ``("trunk", None)``, ``Local/...`` -> ``("local", None)``."""
    tech, endpoint = split_channel(name)
    if tech == "Local":
        return "local", None
    if endpoint in plan.trunks:
        return "trunk", None
    if tech in PHONE_TECHS and plan.is_agent(endpoint):
        return "agent", endpoint
    return "other", None


def endpoint_agent(interface: str, plan: DialPlan) -> str | None:
    """``PJSIP/101`` (a device, a member interface) -> ``101``; None for a trunk, a Local channel,
    ``Queue:...`` and the like."""
    tech, sep, endpoint = interface.partition("/")
    if not sep or tech not in PHONE_TECHS:
        return None
    return endpoint if plan.is_agent(endpoint) else None


def channel_agent(channel: str, plan: DialPlan) -> str | None:
    """``PJSIP/101-0000002c`` -> ``101`` (the phone's own channels only, never a Local half)."""
    kind, agent = classify(channel, plan)
    return agent if kind == "agent" else None


def local_agent(name: str, plan: DialPlan) -> str | None:
    """The agent a Local channel or interface stands for: ``Local/104@transfer-0001;1`` or
    ``Local/104@agents`` -> ``104``; None for anything else."""
    tech, sep, rest = name.partition("/")
    if tech != "Local" or not sep:
        return None
    exten = rest.partition("@")[0]
    return exten if plan.is_agent(exten) else None


def agent_of_channel_name(name: str, plan: DialPlan) -> str | None:
    """The agent behind a channel name, Local channels included (``Local/104@transfer-0001;1``)."""
    return channel_agent(name, plan) or local_agent(name, plan)


def number_of_dial_string(dial_string: str) -> str:
    """``89161234567@trunk`` / ``PJSIP/89161234567@trunk`` / ``104`` -> the number or extension."""
    target = dial_string.rsplit("/", 1)[-1]
    return target.partition("@")[0]


def leg_role(kind: str, is_caller: bool) -> str:
    """A leg's role in the journal: the call's first channel is the ``caller``; the others are an
    ``agent``, an ``external`` party (a trunk leg) or plumbing (``local``/``other``)."""
    if is_caller:
        return "caller"
    return _ROLES.get(kind, kind)


def party(kind: str | None) -> str:
    """Who a channel speaks for when it hangs up: an ``agent``, the ``customer`` (a trunk), else the ``pbx``."""
    return _PARTIES.get(kind or "", "pbx")


_ROLES = {"agent": "agent", "trunk": "external"}
_PARTIES = {"agent": "agent", "trunk": "customer"}
