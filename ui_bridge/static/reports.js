// The managers' reports (issue 13) in the admin's and QA's views: PBX vs registered, contact statistics, the funnel,
// missed calls. Figures from GET /api/reports/NAME (ui_bridge/routes/reports.py: the same query code as the CSV and
// `cti report`), drawn as charts with Chart.js (MIT, vendored as one file: static/vendor/chart.umd.min.js, loaded
// only when the section is first opened) and as tables. What each figure counts: docs/contact-script.md, "Reports".
// Names from outside (agents, reasons, callers) are text nodes (h()), never markup; Chart.js draws on a canvas.

import { fmtNumber, translations } from "./i18n.js";
import { api, query } from "./net.js";
import { clear, errorText, fmtDateTime, fmtDay, fmtDuration, h, label, manyPbxs, pbxList, pbxName, toast } from "./util.js";

const T = translations({
  "Отчёты": "Reports",
  "Показать": "Show",
  "Скрыть": "Hide",
  "Обновить": "Refresh",
  "Звонки и регистрация": "Calls vs registered",
  "Обращения": "Contacts",
  "Воронка": "Funnel",
  "Пропущенные": "Missed calls",
  "с": "from",
  "по": "to",
  "АТС": "PBX",
  "все": "all",
  "Оператор (доб.)": "Agent (ext.)",
  "Скачать CSV": "Download CSV",
  "Загрузка…": "Loading…",
  "Не удалось загрузить отчёт: {error}": "Could not load the report: {error}",
  "Нет данных за период": "No data for the period",
  "Отвечено входящих": "Answered inbound",
  "Зарегистрировано": "Registered",
  "Не зарегистрировано": "Not registered",
  "Обращений по телефону": "Phone contacts",
  "Доля зарегистрированных": "Registered share",
  "День": "Day",
  "Неделя": "Week",
  "Оператор": "Agent",
  "Звонки без обращения": "Answered calls with no contact",
  "показаны {shown} из {total}, новые сверху": "{shown} of {total} shown, newest first",
  "Начало": "Started",
  "Абонент": "Caller",
  "Разговор": "Talk",
  "Запись": "Recording",
  "Зарегистрировать": "Register now",
  "Сценарий открыт": "The script is open",
  "Сценарий открыт на панели оператора {agent}": "The script is open on agent {agent}'s panel",
  "Откроет сценарий на панели оператора {agent}": "Opens the script on agent {agent}'s panel",
  "Регистрирует администратор или оператор, принявший звонок": "An admin or the agent who took the call registers it",
  "Всего обращений": "Contacts",
  "Первичные": "Primary",
  "Повторные": "Repeat",
  "Доля повторных": "Repeat share",
  "По дням": "By day",
  "По неделям": "By week",
  "Тип клиента": "Client type",
  "Канал": "Channel",
  "Причина": "Reason",
  "Заявка": "Request",
  "Запись на сервис": "Booking",
  "Визит": "Visit",
  "Клиенты": "Clients",
  "все клиенты": "all clients",
  "первичные": "primary",
  "повторные": "repeat",
  "Сотрудник": "Employee",
  "не передано": "not passed on",
  "Конверсия": "Conversion",
  "Пропущено": "Missed",
  "Перезвонили": "Called back",
  "Клиент перезвонил": "Called again",
  "Закрыто вручную": "Closed by hand",
  "Открыто": "Open",
  "Пропуски операторов": "Agents' misses",
  "Время до перезвона: медиана": "Time to call back: median",
  "90-й процентиль": "90th percentile",
  "Доля перезвоненных": "Called back share",
  "Пропусков": "Misses",
  "Причины": "Reasons",
  "телефон": "phone",
  "визит": "visit",
  "интернет": "internet",
  "мобильный": "mobile",
  "приглашение": "invitation",
  "частный": "private",
  "корпоративный": "corporate",
  "партнёр": "partner",
  "сотрудник": "employee",
  "не указан": "not given",
  "{n} %": "{n}%",
});

const REPORTS = [
  ["registered", T("Звонки и регистрация")], ["contacts", T("Обращения")], ["funnel", T("Воронка")], ["missed", T("Пропущенные")],
];
const CHANNELS = {
  phone: T("телефон"), visit: T("визит"), internet: T("интернет"), mobile: T("мобильный"), invitation: T("приглашение"),
};
const KINDS = { private: T("частный"), corporate: T("корпоративный"), partner: T("партнёр"), employee: T("сотрудник") };
const CLIENTS = { all: T("все клиенты"), primary: T("первичные"), repeat: T("повторные") };
export const COLORS = ["#2f6fde", "#e0a100", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#a6761d"];

/** A share (0..1) as a percentage with one decimal, written as the language writes numbers (66,7 % / 66.7 %). */
export function share(value) {
  return value === null || value === undefined ? "—" : T("{n} %", { n: fmtNumber(Math.round(value * 1000) / 10) });
}

function seconds(value) {
  return value === null || value === undefined ? "—" : fmtDuration(value);
}

/** "2026-11-01" of a Date, in the browser's calendar (the API reads a date as the site's local midnight). */
export function isoDate(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

let chartLoaded = null;
/** Chart.js, loaded once, when the first chart is drawn (the panel's start does not pay for it). */
export function chartJs() {
  chartLoaded = chartLoaded || import("./vendor/chart.umd.min.js").then(() => globalThis.Chart);
  return chartLoaded;
}

/** Put ``render(chart)``'s nodes into ``body``, ``chart(config)`` placing a canvas (data-test ``test``) where a
 * chart goes; then, Chart.js loaded, draw each unless ``stale()`` by then (a later load is on its way: null). The
 * charts drawn, for the caller to destroy before its next drawing. */
export async function drawCharts(body, render, test, stale) {
  const canvases = [];
  const chart = (config) => {
    const canvas = h("canvas", { "data-test": test, role: "img" });
    canvases.push([canvas, config]);
    return h("div", { class: "report-chart" }, canvas);
  };
  clear(body).append(...render(chart));
  const Chart = await chartJs();
  if (stale()) return null;
  return canvases.map(([canvas, config]) => new Chart(canvas, { ...config,
    options: { responsive: true, maintainAspectRatio: false, animation: false, ...config.options } }));
}

export function figure(title, value, test) {
  return h("div", { class: "report-figure", "data-test": test }, h("div", { class: "report-figure-value" }, value),
    h("div", { class: "report-figure-title" }, title));
}

export function table(columns, rows, test) {
  return h("div", { class: "table-wrap" }, h("table", { class: "table report-table", "data-test": test },
    h("thead", {}, h("tr", {}, columns.map(([, title]) => h("th", {}, title)))),
    h("tbody", {}, rows.length
      ? rows.map((row) => h("tr", {}, columns.map(([key, , show]) => h("td", {}, show ? show(row[key], row) : row[key] ?? ""))))
      : h("tr", { class: "empty" }, h("td", { colspan: columns.length }, T("Нет данных за период"))))));
}

export class ReportsSection {
  constructor(ctx) {
    this.ctx = ctx;
    this.name = "registered";
    this.charts = [];
    const today = new Date();
    const monthAgo = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 30);
    const tomorrow = new Date(today.getFullYear(), today.getMonth(), today.getDate() + 1);
    this.since = h("input", { type: "date", value: isoDate(monthAgo), "data-test": "report-since", "aria-label": T("с") });
    this.until = h("input", { type: "date", value: isoDate(tomorrow), "data-test": "report-until", "aria-label": T("по") });
    this.pbx = h("select", { "data-test": "report-pbx", "aria-label": T("АТС") });
    this.agent = h("input", { type: "text", size: 6, maxlength: 64, "data-test": "report-agent", placeholder: T("Оператор (доб.)") });
    this.csv = h("a", { class: "btn btn-small", "data-test": "report-csv", download: "" }, T("Скачать CSV"));
    this.tabs = REPORTS.map(([name, title]) => {
      const tab = h("button", { type: "button", class: "btn btn-small report-tab", "data-test": `report-tab-${name}`,
        "data-report": name }, title);
      tab.addEventListener("click", () => { this.name = name; this.load(); });
      return tab;
    });
    const show = h("button", { type: "button", class: "btn btn-small", "data-test": "report-show" }, T("Обновить"));
    show.addEventListener("click", () => this.load());
    this.body = h("div", { class: "report-body", "data-test": "report-body" });
    this.toggle = h("button", { type: "button", class: "btn btn-small", "data-test": "reports-toggle" }, T("Показать"));
    this.content = h("div", { class: "reports-content", hidden: true },
      h("div", { class: "report-controls" }, this.tabs, h("span", { class: "spacer" }),
        h("label", {}, T("с"), " ", this.since), h("label", {}, T("по"), " ", this.until), this.pbx, this.agent, show, this.csv),
      this.body);
    this.toggle.addEventListener("click", () => {
      this.content.hidden = !this.content.hidden;
      this.toggle.textContent = this.content.hidden ? T("Показать") : T("Скрыть");
      if (!this.content.hidden) this.load();
    });
    this.el = h("section", { class: "panel reports", "data-test": "reports" },
      h("div", { class: "panel-head" }, h("h2", {}, T("Отчёты")), this.toggle), this.content);
  }

  params() {
    const pbx = this.pbx.value;
    return { since: this.since.value, until: this.until.value, pbx, agent: this.agent.value.trim() };
  }

  fillPbxs() {
    const chosen = this.pbx.value;
    clear(this.pbx).append(h("option", { value: "" }, T("все")), ...pbxList().map((id) => h("option", { value: id }, pbxName(id))));
    this.pbx.value = chosen;
    this.pbx.hidden = !manyPbxs();
  }

  async load() {
    this.fillPbxs();
    for (const tab of this.tabs) tab.classList.toggle("active", tab.dataset.report === this.name);
    const params = this.params();
    this.csv.href = `/api/reports/${this.name}${query({ ...params, format: "csv" })}`;
    const name = this.name;
    const ticket = (this.ticket = (this.ticket || 0) + 1);
    clear(this.body).append(h("p", { class: "muted" }, T("Загрузка…")));
    let report;
    try {
      report = await api(`/api/reports/${name}${query(params)}`);
    } catch (err) {
      if (ticket === this.ticket) {
        clear(this.body).append(h("p", { class: "error", "data-test": "report-error" },
          T("Не удалось загрузить отчёт: {error}", { error: errorText(err) })));
      }
      return;
    }
    if (ticket !== this.ticket) return; // a later load is on its way
    for (const chart of this.charts) chart.destroy();
    this.charts = [];
    this.body.dataset.report = name; // set with the nodes below, in the same task: nobody sees one without the other
    const charts = await drawCharts(this.body, (chart) => this[name](report, chart), "report-chart",
      () => ticket !== this.ticket);
    if (!charts) return;
    this.charts = charts;
    this.body.dataset.drawn = String(this.charts.length);
  }

  registered(report, chart) {
    const t = report.totals;
    const days = report.days.reduce((acc, row) => {
      const day = acc.get(row.day) || { registered: 0, unregistered: 0, phone: 0 };
      day.registered += row.registered;
      day.unregistered += row.unregistered;
      day.phone += row.phone_contacts;
      return acc.set(row.day, day);
    }, new Map());
    const labels = [...days.keys()].map(fmtDay);
    const values = [...days.values()];
    return [
      h("div", { class: "report-figures" }, figure(T("Отвечено входящих"), t.answered, "report-answered"),
        figure(T("Зарегистрировано"), t.registered, "report-registered"),
        figure(T("Не зарегистрировано"), t.unregistered, "report-unregistered"),
        figure(T("Обращений по телефону"), t.phone_contacts, "report-phone-contacts"),
        figure(T("Доля зарегистрированных"), share(t.registered_share), "report-registered-share")),
      chart({
        type: "bar",
        data: { labels, datasets: [
          { label: T("Зарегистрировано"), data: values.map((v) => v.registered), backgroundColor: COLORS[2], stack: "calls" },
          { label: T("Не зарегистрировано"), data: values.map((v) => v.unregistered), backgroundColor: COLORS[3], stack: "calls" },
          { label: T("Обращений по телефону"), data: values.map((v) => v.phone), backgroundColor: COLORS[0], stack: "contacts" },
        ] },
        options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
      }),
      table([["pbx", T("АТС"), (v) => pbxName(v)], ["agent", T("Оператор")], ["answered", T("Отвечено входящих")],
        ["registered", T("Зарегистрировано")], ["unregistered", T("Не зарегистрировано")],
        ["phone_contacts", T("Обращений по телефону")]], report.agents, "report-agents"),
      h("h3", {}, T("Звонки без обращения"), " ", h("span", { class: "muted" },
        T("показаны {shown} из {total}, новые сверху", { shown: report.unregistered.length, total: report.unregistered_total }))),
      table([["started_at", T("Начало"), (v) => fmtDateTime(v)], ["agent", T("Оператор")],
        ["caller", T("Абонент"), (v, row) => [h("div", {}, v || ""), row.caller_name ? h("div", { class: "sub" }, row.caller_name) : null]],
        ["talk_seconds", T("Разговор"), (v) => seconds(v)], ["recording", T("Запись")],
        ["register", "", (v, row) => this.registerButton(v, row)]], report.unregistered, "report-unregistered-calls"),
    ];
  }

  /** "Register now": the script started for this call (its linkedid: the contact is linked to it). The run is the
   * agent's who answered the call: an admin opens it on that agent's panel, an agent (their own calls) on theirs;
   * QA registers nothing. */
  registerButton(start, row) {
    const me = this.ctx.store.me || {};
    const allowed = me.role === "admin" || (me.role === "agent" && me.extension === row.agent);
    const hint = !allowed ? T("Регистрирует администратор или оператор, принявший звонок")
      : me.extension === row.agent ? "" : T("Откроет сценарий на панели оператора {agent}", { agent: row.agent });
    const button = h("button", { type: "button", class: "btn btn-small", "data-test": "report-register",
      disabled: !allowed, title: hint }, T("Зарегистрировать"));
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const data = await this.ctx.socket.request("script.start",
          { channel: start.channel, number: start.number, linkedid: start.linkedid, pbx: start.pbx });
        toast(data && data.agent && data.agent !== me.extension
          ? T("Сценарий открыт на панели оператора {agent}", { agent: data.agent }) : T("Сценарий открыт"));
      } catch (err) {
        toast(errorText(err), "error");
        button.disabled = false;
      }
    });
    return button;
  }

  contacts(report, chart) {
    const t = report.totals;
    const counts = [["contacts", T("Обращения")], ["primary", T("Первичные")], ["repeat", T("Повторные")]];
    const weekly = report.days.length > 62;
    const series = weekly ? report.weeks : report.days;
    return [
      h("div", { class: "report-figures" }, figure(T("Всего обращений"), t.contacts, "report-contacts"),
        figure(T("Первичные"), t.primary, "report-primary"), figure(T("Повторные"), t.repeat, "report-repeat"),
        figure(T("Доля повторных"), share(t.repeat_share), "report-repeat-share")),
      chart({
        type: "bar",
        data: { labels: series.map((r) => fmtDay(r.day || r.week)), datasets: [
          { label: T("Первичные"), data: series.map((r) => r.primary), backgroundColor: COLORS[0] },
          { label: T("Повторные"), data: series.map((r) => r.repeat), backgroundColor: COLORS[1] },
        ] },
        options: { plugins: { title: { display: true, text: weekly ? T("По неделям") : T("По дням") } },
          scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
      }),
      h("div", { class: "report-grid" },
        chart({ type: "doughnut", data: { labels: report.channels.map((r) => CHANNELS[r.channel] || r.channel),
          datasets: [{ data: report.channels.map((r) => r.contacts), backgroundColor: COLORS }] },
        options: { plugins: { title: { display: true, text: T("Канал") } } } }),
        chart({ type: "doughnut", data: { labels: report.client_kinds.map((r) => KINDS[r.client_kind] || T("не указан")),
          datasets: [{ data: report.client_kinds.map((r) => r.contacts), backgroundColor: COLORS }] },
        options: { plugins: { title: { display: true, text: T("Тип клиента") } } } })),
      table([["reason", T("Причина"), (v, row) => row.reason_title || v || T("не указан")], ...counts], report.reasons, "report-reasons"),
      table([["channel", T("Канал"), (v) => CHANNELS[v] || v], ...counts], report.channels, "report-channels"),
      table([["client_kind", T("Тип клиента"), (v) => KINDS[v] || T("не указан")], ...counts], report.client_kinds, "report-kinds"),
      table([[weekly ? "week" : "day", weekly ? T("Неделя") : T("День"), (v) => fmtDay(v)], ...counts], series, "report-days"),
    ];
  }

  funnel(report, chart) {
    const stages = [["contacts", T("Обращения")], ["request", T("Заявка")], ["booking", T("Запись на сервис")], ["visit", T("Визит")]];
    const rates = [["request_rate", T("Заявка"), share], ["booking_rate", T("Запись на сервис"), share], ["visit_rate", T("Визит"), share]];
    const clients = (v) => CLIENTS[v] || v;
    return [
      h("div", { class: "report-figures" }, ...stages.map(([key, title]) => figure(title, report.totals[key], `report-${key}`)),
        figure(T("Конверсия"), share(report.totals.contacts ? report.totals.visit / report.totals.contacts : null), "report-conversion")),
      chart({
        type: "bar",
        data: { labels: stages.map(([, title]) => title), datasets: report.clients.filter((r) => r.clients !== "all").map((r, i) => ({
          label: clients(r.clients), data: stages.map(([key]) => r[key]), backgroundColor: COLORS[i] })) },
        options: { indexAxis: "y", scales: { x: { beginAtZero: true } } },
      }),
      table([["clients", T("Клиенты"), clients], ...stages, ...rates], report.clients, "report-funnel-clients"),
      table([["agent", T("Оператор")], ["clients", T("Клиенты"), clients], ...stages, ...rates], report.agents, "report-funnel-agents"),
      table([["employee_name", T("Сотрудник"), (v, row) => v || row.employee || T("не передано")], ["clients", T("Клиенты"), clients],
        ...stages, ...rates], report.employees, "report-funnel-employees"),
    ];
  }

  missed(report, chart) {
    const t = report.totals;
    const closings = [["callback", T("Перезвонили")], ["called_again", T("Клиент перезвонил")], ["manual", T("Закрыто вручную")],
      ["open", T("Открыто")]];
    return [
      h("div", { class: "report-figures" }, figure(T("Пропущено"), t.missed, "report-missed"),
        figure(T("Перезвонили"), t.callback, "report-callback"),
        figure(T("Время до перезвона: медиана"), seconds(t.callback_median_seconds), "report-callback-median"),
        figure(T("90-й процентиль"), seconds(t.callback_p90_seconds), "report-callback-p90"),
        figure(T("Доля перезвоненных"), share(t.called_back_share), "report-called-back-share"),
        figure(T("Пропуски операторов"), t.agent_misses, "report-agent-misses")),
      chart({
        type: "bar",
        data: { labels: report.reasons.map((r) => label("reason", r.reason)), datasets: closings.map(([key, title], i) => ({
          label: title, data: report.reasons.map((r) => r[key]), backgroundColor: COLORS[i] })) },
        options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
      }),
      table([["reason", T("Причина"), (v) => label("reason", v)], ["missed", T("Пропущено")], ...closings], report.reasons, "report-missed-reasons"),
      table([["agent", T("Оператор")], ["misses", T("Пропусков")], ["by_reason", T("Причины"),
        (v) => Object.entries(v || {}).map(([reason, n]) => `${label("reason", reason)}: ${n}`).join("; ")]],
      report.agents, "report-missed-agents"),
    ];
  }
}
