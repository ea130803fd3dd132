"""The published protocol (docs/protocol.md, the JSON Schema) is generated from the models and current."""

from __future__ import annotations

import json

import pytest

from tests.daemon.conftest import cti
from tests.traces import REPO
from ui_bridge import messages as m
from ui_bridge.protocol_doc import render


def test_docs_protocol_md_is_the_generated_reference() -> None:
    committed = (REPO / "docs" / "protocol.md").read_text(encoding="utf-8")
    assert committed == render(), "docs/protocol.md is stale: run cti schema --docs docs/protocol.md"


def test_cti_schema_prints_the_committed_json_schema() -> None:
    printed = json.loads(cti("schema").stdout)
    assert printed == json.loads((REPO / "docs" / "protocol.schema.json").read_text(encoding="utf-8"))
    names = set(printed["$defs"])
    assert {"CallRinging", "CallAnswered", "CallTransferred", "CallEnded", "MissedNew", "MissedUpdated",
            "AgentState", "Subscribe", "Originate", "Transfer", "Hangup", "QueuePause", "QueueUnpause",
            "MissedClose", "Reply", "Error"} <= names


@pytest.mark.parametrize("model", [*m.SERVER_MESSAGES, *m.CLIENT_MESSAGES], ids=lambda c: c.__name__)
def test_every_message_has_an_example_that_is_valid(model: type) -> None:
    examples = model.model_config["json_schema_extra"]["examples"]
    assert examples, f"{model.__name__} has no example in docs/protocol.md"
    adapter = m.CLIENT_ADAPTER if model in m.CLIENT_MESSAGES else m.SERVER_ADAPTER
    for example in examples:
        assert isinstance(adapter.validate_python(example), model)
