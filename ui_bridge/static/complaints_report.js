// The complaints report at the panel (issue 15; docs/complaints.md, "The report"): over the complaints registered in a
// period, the counts by type, cause and department, the share found justified, the share closed with the client
// satisfied and the median time per stage, as figures, tables and charts, and «Скачать CSV» of the same period.
//
// The figures are the server's (GET /api/complaints/report: cti/complaint_rules.py `report`, the one computation the
// API, its CSV and this view share); the server also decides whose complaints count (a manager's or QA's: every one;
// anyone else's: those they are responsible for), so this view shows what it gets and computes nothing. Opened from the
// complaints list («Отчёт», complaints.js). Drawn with the reports page's helpers (reports.js: Chart.js loaded on first
// use, figures, tables). Causes and departments are people's text: text nodes (h()) and canvas labels, never markup.

import { fmtNumber, lang, translations } from "./i18n.js";
import { api, query } from "./net.js";
import { COLORS, drawCharts, figure, isoDate, share, table } from "./reports.js";
import { clear, errorText, h, setText } from "./util.js";

const T = translations({
  "Отчёт": "Report",
  "Скрыть отчёт": "Hide the report",
  "Отчёт по жалобам": "Complaints report",
  "с": "from",
  "по": "to",
  "Показать": "Show",
  "Скачать CSV": "Download CSV",
  "Загрузка…": "Loading…",
  "Не удалось загрузить отчёт: {error}": "Could not load the report: {error}",
  "Всего жалоб": "Complaints",
  "Доля обоснованных ({n} из {of})": "Justified share ({n} of {of})",
  "Доля удовлетворённых ({n} из {of})": "Satisfied share ({n} of {of})",
  "По типам": "By type",
  "По причинам": "By cause",
  "По подразделениям": "By department",
  "Тип": "Type",
  "Причина": "Cause",
  "Виновное подразделение": "Department at fault",
  "Жалоб": "Complaints",
  "не указано": "not given",
  "Медиана времени на этапе, ч": "Median time per stage, h",
  "Этап": "Stage",
  "Медиана": "Median",
  "Прошли этап": "Past the stage",
  "{n} мин": "{n} min",
  "{n} ч": "{n} h",
  "{n} дн": "{n} d",
});

/** The report's API (ui_bridge/routes/complaints.py; the list's filters, here the period only). */
const REPORT = "/api/complaints/report";

/** A median in hours as people read it: minutes under an hour, hours under a day, else days; "—" when no complaint
 * has left the stage. */
export function duration(hours) {
  if (hours === null || hours === undefined) return "—";
  const one = (n) => fmtNumber(Math.round(n * 10) / 10);
  if (hours < 1) return T("{n} мин", { n: fmtNumber(Math.round(hours * 60)) });
  if (hours < 24) return T("{n} ч", { n: one(hours) });
  return T("{n} дн", { n: one(hours / 24) });
}

export class ComplaintsReport {
  /** ``desk``: complaints.js's ComplaintsDesk (the vocabulary: the types' and stages' titles in the panel's language). */
  constructor(desk) {
    this.desk = desk;
    this.charts = [];
    this.ticket = 0;
    const today = new Date();
    this.since = h("input", { type: "date", "data-test": "complaints-report-since", "aria-label": T("с"),
      value: isoDate(new Date(today.getFullYear(), today.getMonth(), 1)) }); // this month by default
    this.until = h("input", { type: "date", "data-test": "complaints-report-until", "aria-label": T("по"),
      value: isoDate(today) });
    this.csv = h("a", { class: "btn btn-small", "data-test": "complaints-report-csv", download: "complaints-report.csv" },
      T("Скачать CSV"));
    const show = h("button", { type: "submit", class: "btn btn-small btn-primary", "data-test": "complaints-report-show" },
      T("Показать"));
    this.body = h("div", { class: "report-body cmp-report-body", "data-test": "complaints-report-body" });
    this.el = h("div", { class: "cmp-report", "data-test": "complaints-report", hidden: true },
      h("h3", {}, T("Отчёт по жалобам")),
      h("form", { class: "report-controls", onsubmit: (e) => { e.preventDefault(); this.load(); } },
        h("label", {}, T("с"), " ", this.since), h("label", {}, T("по"), " ", this.until), show, this.csv),
      this.body);
    for (const input of [this.since, this.until]) input.addEventListener("change", () => this.updateCsv());
    this.updateCsv();
    /** The button the list shows in its head: opens and hides the report. */
    this.toggle = h("button", { type: "button", class: "btn btn-small", "data-test": "complaints-report-toggle",
      onclick: () => this.show(this.el.hidden) }, T("Отчёт"));
  }

  show(open) {
    this.el.hidden = !open;
    setText(this.toggle, open ? T("Скрыть отчёт") : T("Отчёт"));
    if (open) this.load();
  }

  /** The period as the API reads it: registered from ``since``'s midnight to the end of ``until``'s day. */
  params() {
    const until = this.until.value ? new Date(`${this.until.value}T00:00:00`) : null;
    if (until) until.setDate(until.getDate() + 1);
    return { since: this.since.value, until: until ? isoDate(until) : "" };
  }

  updateCsv() {
    this.csv.href = `${REPORT}${query({ ...this.params(), format: "csv" })}`;
  }

  async load() {
    this.updateCsv();
    const ticket = ++this.ticket;
    delete this.body.dataset.drawn;
    clear(this.body).append(h("p", { class: "muted" }, T("Загрузка…")));
    let report;
    try {
      [report] = await Promise.all([api(`${REPORT}${query(this.params())}`), this.desk.loadOptions().catch(() => null)]);
    } catch (err) {
      if (ticket === this.ticket) {
        clear(this.body).append(h("p", { class: "error", "data-test": "complaints-report-error" },
          T("Не удалось загрузить отчёт: {error}", { error: errorText(err) })));
      }
      return;
    }
    if (ticket !== this.ticket) return; // a later load is on its way
    for (const chart of this.charts) chart.destroy();
    this.charts = [];
    const charts = await drawCharts(this.body, (chart) => this.render(report, chart), "complaints-report-chart",
      () => ticket !== this.ticket);
    if (!charts) return;
    this.charts = charts;
    this.body.dataset.drawn = String(this.charts.length);
  }

  typeTitle(row) {
    const found = this.desk.options && (this.desk.options.types || []).find((t) => t.key === row.key);
    return (found && ((lang === "en" && found.title_en) || found.title)) || row.title || row.key;
  }

  stageTitle(row) {
    return this.desk.options ? this.desk.stageTitle(row.stage) : row.title || row.stage;
  }

  render(report, chart) {
    const named = (v) => v || T("не указано");
    const types = report.by_type.map((r) => ({ ...r, shown: this.typeTitle(r) }));
    const stages = report.stages.map((r) => ({ ...r, shown: this.stageTitle(r) }));
    const doughnut = (rows, label, title) => chart({
      type: "doughnut",
      data: { labels: rows.map(label), datasets: [{ data: rows.map((r) => r.count), backgroundColor: COLORS }] },
      options: { plugins: { title: { display: true, text: title } } },
    });
    return [
      h("div", { class: "report-figures" },
        figure(T("Всего жалоб"), fmtNumber(report.total), "complaints-report-total"),
        figure(T("Доля обоснованных ({n} из {of})", { n: report.justified, of: report.decided }),
          share(report.justified_share), "complaints-report-justified"),
        figure(T("Доля удовлетворённых ({n} из {of})", { n: report.satisfied, of: report.closed }),
          share(report.satisfied_share), "complaints-report-satisfied")),
      h("div", { class: "report-grid" },
        doughnut(types, (r) => r.shown, T("По типам")),
        doughnut(report.by_cause, (r) => named(r.key), T("По причинам")),
        doughnut(report.by_department, (r) => named(r.key), T("По подразделениям"))),
      h("div", { class: "report-grid" },
        table([["shown", T("Тип")], ["count", T("Жалоб")]], types, "complaints-report-types"),
        table([["key", T("Причина"), named], ["count", T("Жалоб")]], report.by_cause, "complaints-report-causes"),
        table([["key", T("Виновное подразделение"), named], ["count", T("Жалоб")]], report.by_department,
          "complaints-report-departments")),
      chart({
        type: "bar",
        data: { labels: stages.map((r) => r.shown), datasets: [{ label: T("Медиана времени на этапе, ч"),
          data: stages.map((r) => r.median_hours), backgroundColor: COLORS[0] }] },
        options: { scales: { y: { beginAtZero: true } } },
      }),
      table([["shown", T("Этап")], ["median_hours", T("Медиана"), duration], ["samples", T("Прошли этап")]], stages,
        "complaints-report-stages"),
    ];
  }
}
