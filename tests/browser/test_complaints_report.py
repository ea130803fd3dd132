"""The complaints report at the panel in real Chromium (issue 15: "counts by type, cause and department, share
justified, median time per stage, share satisfied; CSV export").

Four complaints are registered and walked through the review over the JSON API, each stage left after a known number
of hours on the desk's clock (injected, never slept), so every figure is counted by hand below:

| complaint | type | cause | department | hours in each stage it left | justified | result |
|---|---|---|---|---|---|---|
| 1 | quality | Некачественный ремонт | Цех ремонта | 2, 4, 1, 36, 2, 1 (closed) | yes | satisfied |
| 2 | quality | Некачественный ремонт | Запчасти | 4, 8, 3, —, 5, 2 (closed) | no | not satisfied |
| 3 | delivery | Задержка запчастей | Запчасти | 6, 10, 2, then in the corrective action | yes | — |
| 4 | thanks | — | — | in registration | — | — |

(The stages in order: registration, review, justification, corrective action, satisfaction check, result.)

The admin opens «Жалобы» → «Отчёт»: this month by default, 4 complaints; justified 2 of the 3 decided (66.7 %);
satisfied 1 of the 2 closed (50 %); the medians over the complaints that have left each stage (one still in a stage
does not count for it): registration 4 h (2, 4, 6), review 8 h, justification 2 h, corrective action 1.5 days (36 h,
one complaint), satisfaction check 3.5 h, result 1.5 h; the charts hold the same numbers; «Скачать CSV» downloads the
same figures for the same period. Last month holds none: 0 and «—» where nothing counts.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Locator, Page, expect

from tests.browser.panel_browser import log_in, new_page, t
from tests.ui_bridge.complaints_env import Clock, ComplaintsEnv, complaints_env

HOUR = 3600.0


@dataclass
class Walk:
    """A complaint of the fixture: what it is registered with, and each stage it leaves: after how many hours in it,
    with what filled in first (``plan``: a row of the action plan added)."""

    type: str
    fields: dict[str, str]
    stages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)


REVIEW = {"description": "Разобрано с клиентом", "plan": True}
FIXTURE = [
    Walk("quality", {"cause": "Некачественный ремонт", "department": "Цех ремонта"}, [
        (2, {}), (4, REVIEW), (1, {"justified": True}), (36, {"corrective_action": "Переделано по гарантии"}),
        (2, {"contact_method": "звонок", "client_feedback": "всё в порядке"}),
        (1, {"result": "satisfied", "decision": "Работы переделаны бесплатно."})]),
    Walk("quality", {"cause": "Некачественный ремонт", "department": "Запчасти"}, [
        (4, {}), (8, REVIEW), (3, {"justified": False, "justification_note": "Износ, не дефект"}),
        (5, {"contact_method": "звонок", "client_feedback": "не согласен"}),
        (2, {"result": "not_satisfied", "decision": "Жалоба не обоснована: естественный износ."})]),
    Walk("delivery", {"cause": "Задержка запчастей", "department": "Запчасти"}, [
        (6, {}), (10, REVIEW), (2, {"justified": True})]),
    Walk("thanks", {}),
]


async def send(env: ComplaintsEnv, c: dict[str, Any], action: str, body: dict[str, Any]) -> dict[str, Any]:
    """A change as the admin (a manager: may work on any complaint), on the revision last read."""
    response = await (await env.as_("admin")).post(f"/api/complaints/{c['id']}/{action}",
                                                   json={"revision": c["revision"], **body})
    assert response.status_code in (200, 201), response.text
    changed: dict[str, Any] = response.json()["complaint"]
    return changed


async def file_and_walk(env: ComplaintsEnv, walks: list[Walk]) -> None:
    """Register every walk at one moment, then leave each stage at its hour, the clock only ever going forward."""
    clock = Clock(time.time())  # now: registered this month, in the report's default period
    env.desk.clock = clock
    start = clock.now
    complaints = []
    for i, walk in enumerate(walks):
        response = await (await env.as_("admin")).post("/api/complaints", json={
            "type": walk.type, "client_name": f"Клиент {i + 1}", "comment": "жалоба", "fields": walk.fields})
        assert response.status_code == 201, response.text
        complaints.append(response.json()["complaint"])
    steps = []
    for i, walk in enumerate(walks):
        at = start
        for hours, filled in walk.stages:
            at += hours * HOUR
            steps.append((at, i, filled))
    for at, i, filled in sorted(steps, key=lambda s: (s[0], s[1])):
        clock.now = at
        c = complaints[i]
        changes = {k: v for k, v in filled.items() if k != "plan"}
        if changes:
            c = await send(env, c, "edit", {"changes": changes})
        if filled.get("plan"):
            c = await send(env, c, "plan", {"row": {"when": "2026-11-25", "what": "Диагностика", "who": "Цех",
                                                    "effort_hours": 1}})
        complaints[i] = await send(env, c, "move", {})
    assert [c["stage"] for c in complaints] == ["closed", "closed", "corrective_action", "registration"]


async def chart_data(page: Page, index: int) -> Any:
    """The labels and datasets of the report's ``index``-th chart, as Chart.js holds them."""
    return await page.evaluate("""(i) => {
        const canvas = document.querySelectorAll('[data-test="complaints-report-chart"]')[i];
        const chart = globalThis.Chart.getChart(canvas);
        return {labels: chart.data.labels, data: chart.data.datasets.map((d) => d.data)};
    }""", index)


def value_of(report: Locator, name: str) -> Locator:
    return report.locator(t(f"complaints-report-{name}")).locator(".report-figure-value")


async def rows_of(report: Locator, name: str) -> list[list[str]]:
    """The cells of a report table's rows, as shown."""
    rows = report.locator(t(f"complaints-report-{name}")).locator("tbody tr")
    return [[cell.strip() for cell in await row.locator("td").all_inner_texts()] for row in await rows.all()]


def last_month() -> tuple[str, str]:
    first_of_this = date.today().replace(day=1)
    last = first_of_this - timedelta(days=1)
    return last.replace(day=1).isoformat(), last.isoformat()


async def test_the_manager_reads_the_complaints_report_counted_by_hand_and_downloads_it_as_csv(
        browser: Browser) -> None:
    async with complaints_env() as env:
        await file_and_walk(env, FIXTURE)
        page, log = await new_page(browser)
        await log_in(page, env.panel, "admin")
        await page.locator(t("complaints")).locator(t("complaints-report-toggle")).click()
        report = page.locator(t("complaints-report"))
        await expect(report).to_be_visible()
        # This month by default: from the 1st to today.
        today = date.today()
        await expect(report.locator(t("complaints-report-since"))).to_have_value(today.replace(day=1).isoformat())
        await expect(report.locator(t("complaints-report-until"))).to_have_value(today.isoformat())
        await expect(report.locator(f'{t("complaints-report-body")}[data-drawn="4"]')).to_be_visible()

        await expect(value_of(report, "total")).to_have_text("4")
        await expect(value_of(report, "justified")).to_have_text("66,7 %")
        await expect(report.locator(t("complaints-report-justified"))).to_contain_text("Доля обоснованных (2 из 3)")
        await expect(value_of(report, "satisfied")).to_have_text("50 %")
        await expect(report.locator(t("complaints-report-satisfied"))).to_contain_text("Доля удовлетворённых (1 из 2)")
        assert await rows_of(report, "types") == [["Качество работ", "2"], ["Сроки", "1"], ["Благодарность", "1"]]
        assert await rows_of(report, "causes") == [
            ["Некачественный ремонт", "2"], ["не указано", "1"], ["Задержка запчастей", "1"]]
        assert await rows_of(report, "departments") == [["Запчасти", "2"], ["не указано", "1"], ["Цех ремонта", "1"]]
        assert await rows_of(report, "stages") == [
            ["Регистрация", "4 ч", "3"], ["Рассмотрение", "8 ч", "3"], ["Обоснованность", "2 ч", "3"],
            ["Корректирующие действия", "1,5 дн", "1"], ["Проверка удовлетворённости", "3,5 ч", "2"],
            ["Результат", "1,5 ч", "2"]]
        # The charts Chart.js drew hold the same counts, and the medians in hours.
        assert await chart_data(page, 0) == {"labels": ["Качество работ", "Сроки", "Благодарность"],
                                             "data": [[2, 1, 1]]}
        assert (await chart_data(page, 1))["labels"] == ["Некачественный ремонт", "не указано", "Задержка запчастей"]
        assert (await chart_data(page, 2))["data"] == [[2, 1, 1]]
        assert (await chart_data(page, 3))["data"] == [[4, 8, 2, 36, 3.5, 1.5]]

        # «Скачать CSV»: the same figures, for the same period.
        link = report.locator(t("complaints-report-csv"))
        assert f"since={today.replace(day=1).isoformat()}" in (await link.get_attribute("href") or "")
        async with page.expect_download() as downloading:
            await link.click()
        download = await downloading.value
        text = (await asyncio.to_thread(Path(await download.path()).read_bytes)).decode("utf-8-sig")
        lines = list(csv.reader(io.StringIO(text), delimiter=";"))
        assert dict(zip(lines[0], lines[1], strict=True)) == {
            "total": "4", "justified": "2", "decided": "3", "justified_share": "0.6667", "satisfied": "1",
            "closed": "2", "satisfied_share": "0.5"}
        tables = tables_of(lines[2:])
        assert [(r["key"], r["title"], r["count"]) for r in tables["by_type"]] == [
            ("quality", "Качество работ", "2"), ("delivery", "Сроки", "1"), ("thanks", "Благодарность", "1")]
        assert [(r["key"], r["count"]) for r in tables["by_department"]] == [
            ("Запчасти", "2"), ("", "1"), ("Цех ремонта", "1")]
        assert [(r["stage"], float(r["median_hours"]), r["samples"]) for r in tables["stages"]] == [
            ("registration", 4.0, "3"), ("review", 8.0, "3"), ("justification", 2.0, "3"),
            ("corrective_action", 36.0, "1"), ("satisfaction_check", 3.5, "2"), ("result", 1.5, "2")]

        # Last month holds none of them: nothing counts, and the shares and medians say so.
        since, until = last_month()
        await report.locator(t("complaints-report-since")).fill(since)
        await report.locator(t("complaints-report-until")).fill(until)
        await report.locator(t("complaints-report-show")).click()
        await expect(value_of(report, "total")).to_have_text("0")
        await expect(value_of(report, "justified")).to_have_text("—")
        await expect(value_of(report, "satisfied")).to_have_text("—")
        await expect(report.locator(f'{t("complaints-report-body")}[data-drawn="4"]')).to_be_visible()
        assert {row[1] for row in await rows_of(report, "stages")} == {"—"}
        assert f"since={since}" in (await link.get_attribute("href") or "")
        assert log.unexpected_errors() == []


def tables_of(lines: list[list[str]]) -> dict[str, list[dict[str, str]]]:
    """The CSV's tables after its totals: a blank line, the table's name, its header, its rows."""
    tables: dict[str, list[dict[str, str]]] = {}
    i = 0
    while i < len(lines):
        if not lines[i]:
            name, header = lines[i + 1][0], lines[i + 2]
            i += 3
            rows = []
            while i < len(lines) and lines[i]:
                rows.append(dict(zip(header, lines[i], strict=True)))
                i += 1
            tables[name] = rows
        else:
            i += 1
    return tables
