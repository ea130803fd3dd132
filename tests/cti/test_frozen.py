"""The effects keep their frozen-dataclass contract with :func:`cti.frozen.fast_init`'s cheaper ``__init__``.

The edges hold effects in their own tasks long after the book moved on (``cti/context.py``): an effect one of them
could change would change it for every other subscriber. So: still frozen, same parameters and defaults.
"""

from __future__ import annotations

import dataclasses

import pytest

from cti import effects
from cti.effects import AgentStateChanged, CallEnded, CallRang
from cti.frozen import fast_init

EFFECT_CLASSES = [effects.ChannelView, effects.CallContext, effects.CallStarted, effects.CallDialing, effects.CallRang,
                  effects.LegEnded, effects.CallAnswered, effects.CallTransferred, effects.CallsMerged,
                  effects.CallEnded, effects.VariableWanted, effects.AgentStateChanged]


@pytest.mark.parametrize("cls", EFFECT_CLASSES, ids=lambda c: c.__name__)
def test_every_effect_is_built_by_keyword_or_position_and_stays_frozen(cls: type) -> None:
    names = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
    values = {name: f"v{i}" for i, name in enumerate(names)}
    by_keyword, by_position = cls(**values), cls(*values.values())
    assert by_keyword == by_position and hash(by_keyword) == hash(by_position)
    assert [getattr(by_keyword, n) for n in names] == list(values.values())
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(by_keyword, names[0], "changed")
    assert getattr(by_keyword, names[0]) == "v0"
    assert not hasattr(by_keyword, "__dict__")  # slotted: nothing can be added either


def test_defaults_and_replace_are_those_of_the_dataclass() -> None:
    rang = CallRang("1795479360.12", "101", "PJSIP/101-0001", "1795479360.13", "+33612345678", None, "100", None, 1.0)
    assert rang.context is None
    ended = CallEnded(record=None, missed=None, agent_misses=())  # type: ignore[arg-type]
    assert ended.audience == frozenset()
    view = AgentStateChanged("101", None, "idle", False, None, (), (), "NOT_INUSE", 1.0)
    assert dataclasses.replace(view, state="ringing") == AgentStateChanged(
        "101", None, "ringing", False, None, (), (), "NOT_INUSE", 1.0)
    with pytest.raises(TypeError):
        CallRang("1795479360.12")  # type: ignore[call-arg]


def test_fast_init_refuses_what_it_would_build_differently() -> None:
    @dataclasses.dataclass(slots=True)
    class Mutable:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        a: list[int] = dataclasses.field(default_factory=list)

    for cls in (Mutable, Factory, object):
        with pytest.raises(TypeError):
            fast_init(cls)
