"""``cti contacts register``: the contact register from the command line, on a store with contacts, in every format.

The store is a real SQLite file filled through the interface with real drafts (the example script followed by the
pure runner); the command runs as a user runs it (tests/cli_runner.py).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

from store import open_store
from store.settings import StoreSettings
from tests.cli_runner import cti
from tests.daemon.conftest import write_config
from tests.store.contact_drafts import EXAMPLE, example, follow

T0 = 1773126000.0
HOSTILE = "=HYPERLINK(\"http://evil.example\")"


def register_of(tmp: Path) -> tuple[str, list[int]]:
    """A config and its store with 600 contacts (more than a page), every third a parts request by agent 102, one
    with a hostile note, one a walk-in."""
    config = write_config(tmp, 5038)

    async def fill() -> list[int]:
        made = []
        async with open_store(StoreSettings(path=tmp / "journal.sqlite"), region="RU") as store:
            # The script desk keeps every version it ran, so the rows read its reasons' titles (store/reason_titles.py).
            script = example()
            await store.keep_script_version(script.name, script.version, EXAMPLE.read_text(encoding="utf-8"), at=T0)
            for i in range(600):
                route, options = ("parts", {"agent": "102"}) if i % 3 == 0 else ("other", {})
                if i == 7:
                    options = {"answers": {"registered": {"note": HOSTILE}}}
                if i == 8:
                    options = {"channel": "visit", "linkedid": None}
                draft = follow(route, at=T0 + 60 * i, **{"linkedid": f"c{i}", **options})  # type: ignore[arg-type]
                made.append((await store.save_contact(draft, repeat_days=180)).id)
            await store.set_contact_stage(made[3], "booking", at=T0 + 9000, by="dms",
                                                       external_id="ЗН-1")
        return made

    made = asyncio.run(fill())
    return str(config), made


def test_every_format_lists_the_register_with_its_filters(tmp_path: Path) -> None:
    config, made = register_of(tmp_path)
    everything = json.loads(cti("contacts", "register", "--config", config, "--format", "json").stdout)
    assert [c["id"] for c in everything] == made  # oldest first, across pages
    assert everything[0]["reason"] == "parts" and everything[0]["request_by"] == "script"
    assert everything[0]["at"].endswith("+03:00")  # in the configured zone
    parts = json.loads(cti("contacts", "register", "--config", config, "--format", "json", "--reason", "parts",
                           "--limit", "5").stdout)
    assert [c["id"] for c in parts] == made[0:15:3]
    booked = json.loads(cti("contacts", "register", "--config", config, "--format", "json", "--stage",
                            "booking").stdout)
    assert [(c["id"], c["booking_external_id"]) for c in booked] == [(made[3], "ЗН-1")]
    visits = json.loads(cti("contacts", "register", "--config", config, "--format", "json", "--channel",
                            "visit").stdout)
    assert [c["id"] for c in visits] == [made[8]]
    by_agent = json.loads(cti("contacts", "register", "--config", config, "--format", "json", "--agent", "102",
                              "--employee", "parts-desk", "--since", "2026-03-10 10:00", "--until",
                              "2026-03-10 11:00").stdout)
    assert [c["id"] for c in by_agent] == made[0:60:3]

    rows = list(csv.reader(io.StringIO(cti("contacts", "register", "--config", config, "--format", "csv").stdout),
                           delimiter=";"))
    assert rows[0][:3] == ["id", "at", "channel"] and len(rows) == 601
    note = rows[0].index("note")
    assert rows[8][note] == "'" + HOSTILE  # formula neutralised

    table = cti("contacts", "register", "--config", config, "--reason", "parts", "--limit", "3").stdout.splitlines()
    assert table[0].strip() == "Contact register" and "Passed to" in table[2]
    assert [line.split("│")[1].strip() for line in table[4:7]] == [str(i) for i in made[0:9:3]]
    assert "Запчасти" in table[4] and "Отдел запчастей" in table[4]  # the reason by its script's title
    assert "nothing matches" in cti("contacts", "register", "--config", config, "--client-type", "partner").stdout


def test_a_filter_that_cannot_match_is_refused_with_what_is_expected(tmp_path: Path) -> None:
    config, _ = register_of(tmp_path)
    for args, says in [(("--stage", "paid"), "--stage must be request, booking, visit"),
                       (("--channel", "fax"), "--channel must be phone"),
                       (("--client-type", "vip"), "--client-type must be private"),
                       (("--encoding", "utf-16"), "--encoding must be utf-8 or cp1251"),
                       (("--since", "2026-03-11", "--until", "2026-03-10"), "is after --until")]:
        ran = cti("contacts", "register", "--config", config, *args, check=False)
        assert ran.returncode == 2 and says in ran.stderr, (args, ran.stderr)
