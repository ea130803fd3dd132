"""The checklist's rules (``cti/qa.py``): a filled form's weighted points, and every wrong form refused with the item
it is wrong about, so the page, the API and the per-agent report agree on one figure."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cti.qa import Checklist, ChecklistItem, score_of
from ui_bridge.settings import DEFAULT_CHECKLIST, QaSettings

CAR_SERVICE = Checklist("car-service", (
    ChecklistItem("greeting", "Поздоровался и представился"),
    ChecklistItem("identified", "Узнал имя клиента"),
    ChecklistItem("booking", "Предложил запись", points=2, weight=2),
    ChecklistItem("goodbye", "Попрощался", weight=0.5),
))


def test_the_score_is_the_weighted_points_out_of_the_most_the_form_can_give() -> None:
    assert CAR_SERVICE.max_points == 1 + 1 + 4 + 0.5
    assert score_of(CAR_SERVICE, {"greeting": 1, "identified": 0, "booking": 2, "goodbye": 1}) == (5.5, 6.5)
    assert score_of(CAR_SERVICE, {"greeting": 0, "identified": 0, "booking": 0, "goodbye": 0}) == (0.0, 6.5)
    assert score_of(CAR_SERVICE, {"greeting": 1, "identified": 1, "booking": 2, "goodbye": 1}) == (6.5, 6.5)


def test_a_yes_no_item_and_a_points_item() -> None:
    assert CAR_SERVICE.items[0].kind == "yes_no"
    assert CAR_SERVICE.items[2].kind == "points"


@pytest.mark.parametrize(("answers", "message"), [
    ({"greeting": 1, "identified": 1, "booking": 2}, "'goodbye' (Попрощался) is not answered"),
    ({"greeting": 1, "identified": 1, "booking": 2, "goodbye": 1, "smiled": 1}, "'smiled' is no item"),
    ({"greeting": 2, "identified": 1, "booking": 2, "goodbye": 1}, "'greeting': 2 is out of range (0 or 1)"),
    ({"greeting": 1, "identified": 1, "booking": 3, "goodbye": 1}, "'booking': 3 is out of range (0 to 2)"),
    ({"greeting": 1, "identified": -1, "booking": 0, "goodbye": 1}, "'identified': -1 is out of range"),
    ({"greeting": True, "identified": 1, "booking": 0, "goodbye": 1}, "'greeting': the answer is a whole number"),
    ({"greeting": 0.5, "identified": 1, "booking": 0, "goodbye": 1}, "'greeting': the answer is a whole number"),
])
def test_a_wrong_form_is_refused_naming_the_item(answers: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        score_of(CAR_SERVICE, answers)


def test_a_checklist_with_a_key_twice_or_no_items_or_a_bad_item_is_refused() -> None:
    with pytest.raises(ValueError, match="'greeting' is listed twice"):
        Checklist("x", (ChecklistItem("greeting", "a"), ChecklistItem("greeting", "b")))
    with pytest.raises(ValueError, match="at least one item"):
        Checklist("x", ())
    with pytest.raises(ValueError, match="points is 1"):
        Checklist("x", (ChecklistItem("a", "a", points=0),))
    with pytest.raises(ValueError, match="weight"):
        Checklist("x", (ChecklistItem("a", "a", weight=0),))


def test_the_config_gives_the_car_service_checklist_by_default_and_reads_a_centres_own() -> None:
    default = QaSettings().checklist_of()
    assert [i.key for i in default.items] == [i.key for i in DEFAULT_CHECKLIST] == [
        "greeting", "identified", "booking", "goodbye"]
    own = QaSettings.model_validate({"checklist_name": "v2", "checklist": [
        {"key": "greeting", "title": "Поздоровался", "points": 1, "weight": 1},
        {"key": "solved", "title": "Решил вопрос", "points": 3, "weight": 2}]}).checklist_of()
    assert own.name == "v2" and own.max_points == 7
    with pytest.raises(ValidationError, match="listed twice"):
        QaSettings.model_validate({"checklist": [{"key": "a", "title": "A"}, {"key": "a", "title": "B"}]})
    with pytest.raises(ValidationError, match=r"checklist\.0\.key"):
        QaSettings.model_validate({"checklist": [{"key": "Привет", "title": "A"}]})
    with pytest.raises(ValidationError, match="extra"):
        QaSettings.model_validate({"checklist": [{"key": "a", "title": "A", "bonus": 1}]})
