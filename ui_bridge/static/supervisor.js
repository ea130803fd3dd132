// The supervisor's figures: per queue (who waits, the day's counts, service level) and per agent (state, time in
// it, the day's calls, talk time, misses), from GET /api/supervisor and the `supervisor.figures` pushes
// (ui_bridge/supervisor.py). Shared by the admin view (SupervisorSection) and the wallboard (wallboard.js).
// Waits and times in a state tick in place: every element with data-since shows the time since then.
// What each figure means: docs/panel.md, "Supervisor view and wallboard".

import { translations } from "./i18n.js";
import { api } from "./net.js";
import { clear, errorText, fmtDay, fmtDuration, h, manyPbxs, pbxList, pbxName, setText } from "./util.js";

const T = translations({
  "Очереди": "Queues",
  "Операторы за день": "Agents today",
  "Очередь": "Queue",
  "Ждут": "Waiting",
  "Дольше всех": "Longest wait",
  "Принято": "Answered",
  "Ушли": "Abandoned",
  "Короткие": "Short",
  "Без ответа": "Unanswered",
  "Уровень обслуживания": "Service level",
  "Ср. ожидание": "Avg wait",
  "Ср. разговор": "Avg talk",
  "Доб.": "Ext.",
  "Оператор": "Agent",
  "Состояние": "State",
  "В состоянии": "Time in state",
  "Звонков": "Calls",
  "Разговор": "Talk time",
  "Пропущено": "Missed",
  "Данных пока нет": "No figures yet",
  "Очередей нет": "No queues",
  "Операторов нет": "No agents",
  "за {day}, ответ в пределах {s} с": "for {day}, answered within {s} s",
  "свободен": "available",
  "звонит": "ringing",
  "разговор": "on a call",
  "пауза": "paused",
  "не в сети": "offline",
  "неизвестно": "unknown",
  "Не удалось загрузить показатели: {error}": "Could not load the figures: {error}",
  "{n} %": "{n}%",
});

const STATES = {
  idle: T("свободен"), ringing: T("звонит"), in_call: T("разговор"), paused: T("пауза"), offline: T("не в сети"),
  unknown: T("неизвестно"),
};

/** An agent's state in the panel's language. */
export function stateText(state) {
  return STATES[state] || STATES.unknown;
}

/** A service level (0..1, or null: no call counts) as people read it. */
export function percent(level) {
  return level === null || level === undefined ? "—" : T("{n} %", { n: Math.round(level * 100) });
}

/** Seconds as m:ss, or a dash for none. */
export function duration(seconds) {
  return seconds === null || seconds === undefined ? "—" : fmtDuration(seconds);
}

/** A ticking duration since a server time (the store converts it to the browser's clock), or a dash. */
export function ticker(store, iso, props = {}) {
  if (!iso) return h("span", props, "—");
  const since = store.localMs(iso);
  return h("span", { ...props, class: `ticker ${props.class || ""}`.trim(), "data-since": since },
    fmtDuration((Date.now() - since) / 1000));
}

/**
 * The latest figures of each PBX. GET /api/supervisor and the pushes may cross: a PBX's figures are replaced only
 * by ones taken at the same time or later (`at`).
 */
export class Figures {
  constructor() {
    this.byPbx = new Map();
    this.error = null;
  }

  take(figures) {
    if (!figures || !figures.pbx) return false;
    const old = this.byPbx.get(figures.pbx);
    if (old && Date.parse(old.at) > Date.parse(figures.at)) return false;
    this.byPbx.set(figures.pbx, figures);
    return true;
  }

  async load() {
    try {
      const data = await api("/api/supervisor");
      for (const f of (data && data.figures) || []) this.take(f);
      this.error = null;
    } catch (err) {
      this.error = err;
    }
  }

  /** The PBXs' figures in the order of hello's list (the configuration's), then any other. */
  list() {
    const order = pbxList().map((p) => p.id);
    return [...this.byPbx.values()].sort((a, b) => {
      const ia = order.indexOf(a.pbx);
      const ib = order.indexOf(b.pbx);
      return (ia < 0 ? 1e9 : ia) - (ib < 0 ? 1e9 : ib) || a.pbx.localeCompare(b.pbx);
    });
  }
}

function cell(test, content, cls = "right") {
  return h("td", { class: cls, "data-test": test }, content);
}

/** The admin view's supervisor section: a queues table and an agents table per PBX. */
export class SupervisorSection {
  constructor(ctx) {
    this.ctx = ctx;
    this.figures = new Figures();
    this.status = h("span", { class: "muted", "data-test": "sv-status" });
    this.body = h("div", { class: "sv-body" });
    this.el = h("section", { class: "panel supervisor", "data-test": "supervisor" },
      h("div", { class: "panel-head" }, h("h2", {}, T("Очереди")), this.status),
      this.body);
  }

  async load() {
    await this.figures.load();
    this.render();
  }

  onMessage(msg) {
    if (msg.type === "hello") this.load(); // at every (re)connect: the figures as they are now
    if (msg.type === "supervisor.figures" && this.figures.take(msg)) this.render();
  }

  render() {
    const all = this.figures.list();
    const error = this.figures.error;
    setText(this.status, error ? T("Не удалось загрузить показатели: {error}", { error: errorText(error) }) : "");
    clear(this.body);
    if (!all.length) {
      this.body.append(h("p", { class: "muted empty", "data-test": "sv-empty" }, T("Данных пока нет")));
      return;
    }
    for (const f of all) this.body.append(this.pbxBlock(f));
  }

  pbxBlock(f) {
    const store = this.ctx.store;
    const queues = f.queues.length ? f.queues.map((q) => h("tr", { "data-test": "sv-queue-row", "data-queue": q.queue, "data-pbx": f.pbx },
      h("td", { class: "nowrap" }, q.queue),
      cell("sv-waiting", String(q.waiting), `right${q.waiting ? " sv-hot" : ""}`),
      h("td", { class: "right" }, ticker(store, q.longest_wait_since, { "data-test": "sv-longest" })),
      cell("sv-answered", String(q.answered)),
      cell("sv-abandoned", String(q.abandoned)),
      cell("sv-short", String(q.short_abandoned)),
      cell("sv-unanswered", String(q.unanswered)),
      cell("sv-sl", percent(q.service_level)),
      cell("sv-avg-wait", duration(q.average_wait_seconds)),
      cell("sv-avg-talk", duration(q.average_talk_seconds))))
      : [h("tr", { class: "empty" }, h("td", { colspan: 10 }, T("Очередей нет")))];
    const agents = f.agents.length ? f.agents.map((a) => h("tr", { "data-test": "sv-agent-row", "data-extension": a.extension, "data-pbx": f.pbx, "data-state": a.state },
      h("td", { class: "num" }, a.extension),
      h("td", {}, a.name || ""),
      h("td", { "data-test": "sv-agent-state" }, h("span", { class: `badge agent-${a.state}` }, stateText(a.state))),
      h("td", { class: "right" }, ticker(store, a.since, { "data-test": "sv-agent-since" })),
      cell("sv-agent-calls", String(a.calls)),
      cell("sv-agent-talk", duration(a.talk_seconds)),
      cell("sv-agent-misses", String(a.misses))))
      : [h("tr", { class: "empty" }, h("td", { colspan: 7 }, T("Операторов нет")))];
    const head = (names, left) => h("thead", {}, h("tr", {}, names.map((n, i) => h("th", { class: i < left ? null : "right" }, n))));
    return h("div", { class: "sv-pbx", "data-test": "sv-pbx", "data-pbx": f.pbx },
      h("p", { class: "muted sv-day" }, manyPbxs() ? `${pbxName(f.pbx)} · ` : "",
        T("за {day}, ответ в пределах {s} с", { day: fmtDay(f.day), s: f.service_level_seconds })),
      h("div", { class: "table-wrap" }, h("table", { class: "table", "data-test": "sv-queues" },
        head([T("Очередь"), T("Ждут"), T("Дольше всех"), T("Принято"), T("Ушли"), T("Короткие"), T("Без ответа"),
          T("Уровень обслуживания"), T("Ср. ожидание"), T("Ср. разговор")], 1),
        h("tbody", {}, queues))),
      h("h3", { class: "sv-subhead" }, T("Операторы за день")),
      h("div", { class: "table-wrap" }, h("table", { class: "table", "data-test": "sv-agents" },
        head([T("Доб."), T("Оператор"), T("Состояние"), T("В состоянии"), T("Звонков"), T("Разговор"), T("Пропущено")], 3),
        h("tbody", {}, agents))));
  }
}
