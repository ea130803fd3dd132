"""docs/crm.md's "1C" section holds the JSON Schema of an event as the code makes it (``OneCEvent``), and the
configuration that could not work is said by ``cti check-config``'s checks, not found out from a silent 1C."""

from __future__ import annotations

import json
import re

from companion.crm.onec import event_schema
from tests.traces import REPO
from ui_bridge.crm_settings import OneCSettings

URL = "https://1c.example.ru/base/hs/cti/events"
_BLOCK = re.compile(r"<!-- onec-event-schema:[^\n]*-->\n```json\n(.*?)\n```\n<!-- /onec-event-schema -->", re.S)


def test_the_documented_schema_is_the_generated_one() -> None:
    found = _BLOCK.search((REPO / "docs" / "crm.md").read_text(encoding="utf-8"))
    assert found, "docs/crm.md has no generated 1C event schema"
    assert json.loads(found.group(1)) == event_schema(), "regenerate it: json.dumps(event_schema(), indent=2)"


def test_a_1c_section_that_would_give_1c_nothing_is_a_problem() -> None:
    assert OneCSettings(pull=True).problems() == []
    assert OneCSettings.model_validate({"push_url": URL, "username": "cti", "password": "x"}).problems() == []
    assert any("nor pull" in p for p in OneCSettings().problems())
    assert any("username" in p for p in OneCSettings.model_validate({"push_url": URL}).problems())
