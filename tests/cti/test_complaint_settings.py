"""``[complaints]`` (``ui_bridge/complaint_settings.py``): the defaults a site gets, a site's own lists and deadlines
turned into the rules' values, every wrong entry refused at load naming it, and the example file's commented block a
working configuration."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from companion.config import ConfigError, file_problems, parse_config
from cti.complaint_rules import DEFAULT_STAGE_HOURS, deadline
from ui_bridge.complaint_settings import ComplaintSettings

REPO = Path(__file__).resolve().parents[2]
T0 = 1_767_261_600.0


def test_the_defaults_four_types_three_subject_kinds_every_admin_a_manager() -> None:
    settings = ComplaintSettings()
    rules = settings.rules(["root", "boss"])
    assert [(t.key, t.title, t.title_en) for t in rules.types] == [
        ("quality", "Качество работ", "Quality of work"), ("delivery", "Сроки", "Delivery / deadline"),
        ("question", "Вопрос", "Question"), ("thanks", "Благодарность", "Thanks")]
    assert [k.key for k in rules.subject_kinds] == ["repair_order", "part", "service"]
    assert rules.managers == ("root", "boss")
    assert dict(rules.stage_hours) == {k: v for k, v in DEFAULT_STAGE_HOURS.items() if k != "closed"}
    assert (rules.causes, rules.departments, rules.workshops) == ((), (), ())  # free text
    assert settings.max_attachment_bytes == 10 * 1024 * 1024


def test_a_sites_lists_managers_and_deadlines_become_the_rules() -> None:
    settings = ComplaintSettings.model_validate({
        "managers": ["boss"], "causes": ["Сроки"], "departments": ["Сервис"], "workshops": ["Кузовной цех"],
        "subjects": {"service": ["ТО"]},
        "deadline_hours": {"review": 8},
        "deadline_hours_by_type": {"thanks": {"review": 0, "result": 2}},
        "types": [{"key": "quality", "title": "Качество", "title_en": "Quality"},
                  {"key": "thanks", "title": "Спасибо", "title_en": "Thanks"}],
    })
    rules = settings.rules(["root"])
    assert rules.managers == ("boss",)
    assert deadline("review", "quality", rules, T0) == T0 + 8 * 3600
    assert deadline("review", "thanks", rules, T0) is None
    assert deadline("result", "thanks", rules, T0) == T0 + 2 * 3600
    assert deadline("justification", "thanks", rules, T0) == T0 + 24 * 3600
    assert rules.subjects == {"service": ("ТО",)} and rules.workshops == ("Кузовной цех",)


@pytest.mark.parametrize(("section", "problem"), [
    ({"deadline_hours_by_type": {"refund": {"review": 1}}}, "deadline_hours_by_type: no 'refund' among the types"),
    ({"responsible_by_type": {"refund": "boss"}}, "responsible_by_type: no 'refund' among the types"),
    ({"subjects": {"car": ["x"]}}, "subjects: no 'car' among the subject_kinds"),
    ({"types": [{"key": "a", "title": "А", "title_en": "A"}, {"key": "a", "title": "Б", "title_en": "B"}]},
     "types: 'a' listed twice"),
    ({"types": [{"key": "Quality!", "title": "А", "title_en": "A"}]}, "types.0.key"),
    ({"types": []}, "types"),
    ({"attachment_types": ["pdf", "html"]}, "unknown file type 'html'"),
    ({"attachment_types": ["svg"]}, "unknown file type 'svg'"),
    ({"deadline_hours": {"review": -1}}, "deadline_hours.review"),
    ({"deadline_hours": {"closed": 1}}, "deadline_hours.closed"),
    ({"causes": ["Сроки\nBcc: x"]}, "causes.0"),
    ({"max_attachment_mb": 0}, "max_attachment_mb"),
    ({"client_language": "de"}, "client_language"),
    ({"colour": "red"}, "colour"),
])
def test_a_wrong_entry_is_refused_at_load_naming_it(section: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)):
        parse_config({"complaints": section})


def test_attachments_are_typed_by_their_extension_among_the_accepted() -> None:
    settings = ComplaintSettings.model_validate({"attachment_types": [".PDF", "jpg", "pdf"]})
    assert settings.attachment_types == ("pdf", "jpg")
    assert settings.content_type("Акт.PDF") == "application/pdf"
    assert settings.content_type("photo.jpg") == "image/jpeg"
    assert settings.content_type("photo.png") is None  # known, not accepted here
    assert settings.content_type("page.html") is None
    assert settings.content_type("no-extension") is None


def test_the_example_files_commented_block_is_a_working_configuration(tmp_path: Path) -> None:
    text = (REPO / "config.example.toml").read_text(encoding="utf-8")
    start = text.index("# [complaints]")
    block = text[start:text.index("\n\n", start)]  # the commented block runs to the first empty line
    uncommented = "\n".join(re.sub(r"^# ?", "", line) for line in block.splitlines())
    uncommented = re.sub(r"\s+# .*$", "", uncommented, flags=re.M)
    settings = parse_config(tomllib.loads(uncommented), tmp_path / "cti.toml")
    assert settings.complaints.managers == ("boss",)
    assert settings.complaints.attachments_folder == tmp_path / "complaint-files"  # relative to the config file
    assert settings.complaints.templates_folder == tmp_path / "complaint-templates"
    assert settings.complaints.rules().type_hours == {"quality": {"corrective_action": 120.0}}
    # The templates folder named does not exist yet: made at start; a broken copy in it is a problem.
    assert not any(p.startswith("complaints.templates_folder:") for p in file_problems(settings))
    (tmp_path / "complaint-templates").mkdir()
    (tmp_path / "complaint-templates" / "decision.ru.txt").write_text("Решение\n", encoding="utf-8")
    assert any(p.startswith(f"{tmp_path / 'complaint-templates' / 'decision.ru.txt'}: the first line")
               for p in file_problems(settings))
    assert parse_config(tomllib.loads(text), tmp_path / "cti.toml").complaints == ComplaintSettings(
        attachments_folder=tmp_path / "complaint-files")  # commented out: the defaults
