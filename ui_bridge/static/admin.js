// The admin's view (live call board, agents, missed-call register, journal) and the QA view (journal, the
// register read-only).

import { Directory } from "./card.js";
import { markUncertain, uncertainMark } from "./health.js";
import { AlertsPanel } from "./alerts.js";
import { CrmBlock } from "./crm.js";
import { RemindersPanel } from "./reminders.js";
import { Journal } from "./journal.js";
import { AdminLive } from "./live.js";
import { MissedRegister } from "./register.js";
import { ReportsSection } from "./reports.js";
import { SupervisorSection } from "./supervisor.js";
import { translations } from "./i18n.js";
import { api, query } from "./net.js";
import {
  busy, clear, errorText, fmtDateTime, fmtDuration, fmtShortDateTime, fmtTime, h, label, manyPbxs, pbxName, setText,
  shownNumber, toast,
} from "./util.js";

const T = translations({
  "скрыт": "withheld",
  "Точно?": "Sure?",
  "Звонки сейчас": "Calls now",
  "Начало": "Started",
  "Длит.": "Duration",
  "Абонент": "Caller",
  "Набран": "Dialled",
  "Очередь": "Queue",
  "Операторы": "Agents",
  "Состояние": "State",
  "Сейчас звонков нет": "No calls now",
  "Завершить": "Hang up",
  "по справочнику": "from the directory",
  "от {ext}": "from {ext}",
  "ожидает": "waiting",
  "разговор": "talking",
  "вызов": "ringing",
  "перевод → {target}": "transfer → {target}",
  "Доб.": "Ext.",
  "Оператор": "Agent",
  "Нет данных об операторах": "No agents known yet",
  "Пауза": "Pause",
  "Снять паузу": "End pause",
  "на паузе": "paused",
  "очередь": "queue",
});

/** The PBX of a call or an entry, by name: only when the user sees several (else null: no column). */
function pbxCell(item) {
  return manyPbxs() ? h("span", { class: "chip chip-small pbx", "data-test": "pbx-name" }, pbxName(item.pbx)) : null;
}

function party(number, name) {
  return [h("div", { class: "num" }, number || T("скрыт")), name ? h("div", { class: "sub" }, name) : null];
}

/** The directory's name for the caller of a call in progress, when it differs from the PBX's caller name. */
function cardName(call) {
  const name = call.direction !== "outbound" && call.card && call.card.name;
  return name && name !== call.caller_name ? name : null;
}

/** A button that asks "sure?" on the first click and acts on the second (no blocking confirm()). */
function confirmButton(text, props, action) {
  const button = h("button", { type: "button", ...props }, text);
  let armed = null;
  button.addEventListener("click", () => {
    if (!armed) {
      button.textContent = T("Точно?");
      button.classList.add("armed");
      armed = setTimeout(() => {
        armed = null;
        button.textContent = text;
        button.classList.remove("armed");
      }, 3000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    button.textContent = text;
    button.classList.remove("armed");
    busy(button, action);
  });
  return button;
}

/**
 * Keep one <tr> per key in ``body``, in ``items`` order: rows are updated in place (``fill(row, item)``
 * replaces the data cells), so a button in a row survives the next event and a click is never lost.
 */
function syncRows(body, rows, items, keyOf, make, fill, emptyText, colspan) {
  const seen = new Set();
  let empty = body.querySelector("tr.empty");
  if (items.length && empty) empty.remove();
  for (const item of items) {
    const key = keyOf(item);
    seen.add(key);
    let row = rows.get(key);
    if (!row) {
      row = make(item);
      rows.set(key, row);
    }
    fill(row, item);
    body.append(row.tr); // moves an existing row into order; never recreates it
  }
  for (const [key, row] of rows) {
    if (!seen.has(key)) {
      row.tr.remove();
      rows.delete(key);
    }
  }
  if (!items.length && !empty) {
    empty = h("tr", { class: "empty" }, h("td", { colspan }, emptyText));
    body.append(empty);
  }
}

function fillCells(cells, contents) {
  contents.forEach((content, i) => {
    const td = cells[i];
    clear(td);
    if (Array.isArray(content)) for (const c of content) { if (c !== null) td.append(c); }
    else if (content instanceof Node) td.append(content);
    else td.textContent = content === null || content === undefined ? "" : String(content);
  });
}

// -- live call board ----------------------------------------------------------------------------------------

class CallBoard {
  constructor(ctx) {
    this.ctx = ctx;
    this.count = h("span", { class: "count", "data-test": "board-count" });
    this.body = h("tbody");
    this.el = h("section", { class: "panel", "data-test": "call-board" },
      h("div", { class: "panel-head" }, h("h2", {}, T("Звонки сейчас")), this.count),
      h("div", { class: "table-wrap" }, h("table", { class: "table" },
        h("thead", {}, h("tr", {}, [T("Начало"), T("Длит."), T("Абонент"), T("Набран"), T("Очередь"), T("Операторы"),
          T("Состояние"), ""].map((t) => h("th", {}, t)))),
        this.body)));
  }

  render() {
    const calls = [...this.ctx.store.calls.values()].sort((a, b) => a.startedMs - b.startedMs);
    setText(this.count, calls.length ? String(calls.length) : "");
    this.rows = this.rows || new Map();
    syncRows(this.body, this.rows, calls, (c) => c.key, (call) => this.makeRow(call), (row, call) => this.fillRow(row, call),
      T("Сейчас звонков нет"), 8);
  }

  makeRow(call) {
    const cells = [
      h("td", { class: "nowrap" }), h("td", { class: "right nowrap" }), h("td"), h("td", { class: "num" }), h("td"),
      h("td"), h("td"),
    ];
    const action = h("td", { class: "right" }, this.ctx.live ? this.ctx.live.boardButton(call) : null, this.ctx.canControl
      ? confirmButton(T("Завершить"), { class: "btn btn-small btn-danger", "data-test": "board-hangup" },
        () => this.ctx.socket.request("hangup", { linkedid: call.linkedid, pbx: call.pbx }))
      : null);
    const tr = h("tr", { "data-test": "board-row", "data-linkedid": call.linkedid, "data-pbx": call.pbx }, cells, action);
    return { tr, cells, uncertain: uncertainMark("board-uncertain") };
  }

  fillRow(row, call) {
    row.tr.dataset.state = call.state;
    const since = call.state === "talking" && call.answeredMs ? call.answeredMs : call.startedMs;
    const legs = [...call.agents.values()].sort((a, b) => a.extension.localeCompare(b.extension));
    const agentName = (ext) => (this.ctx.store.agents.get(`${call.pbx}|${ext}`) || {}).name;
    const outbound = call.direction === "outbound";
    fillCells(row.cells, [
      [h("div", {}, fmtTime(call.started_at)), pbxCell(call)],
      h("span", { class: "ticker", "data-since": since }, fmtDuration((Date.now() - since) / 1000)),
      [...party(shownNumber(call, outbound ? "called" : "caller"), outbound ? null : call.caller_name),
        cardName(call) ? h("div", { class: "sub board-card", "data-test": "board-card-name", title: T("по справочнику") },
          cardName(call)) : null],
      outbound ? T("от {ext}", { ext: call.caller || "?" }) : shownNumber(call, "called") || "",
      call.queue || "",
      legs.length
        ? legs.map((l) => h("span", { class: `chip leg-${l.state}`, title: agentName(l.extension) || "" },
          `${l.extension} · ${label("legState", l.state)}`))
        : h("span", { class: "muted" }, T("ожидает")),
      [h("span", { class: `badge call-${call.state}` }, call.state === "talking" ? T("разговор") : T("вызов")),
        call.transferred_to ? h("div", { class: "sub" }, T("перевод → {target}", { target: call.transferred_to })) : null, row.uncertain],
    ]);
    markUncertain(row.tr, row.uncertain, this.ctx.store.uncertain(call)); // its PBX is lost (health.js)
  }
}

// -- agents board ---------------------------------------------------------------------------------------------

class AgentsBoard {
  constructor(ctx) {
    this.ctx = ctx;
    this.body = h("tbody");
    this.el = h("section", { class: "panel", "data-test": "agents-board" },
      h("div", { class: "panel-head" }, h("h2", {}, T("Операторы"))),
      h("div", { class: "table-wrap" }, h("table", { class: "table" },
        h("thead", {}, h("tr", {}, [T("Доб."), T("Оператор"), T("Состояние"), ""].map((t) => h("th", {}, t)))),
        this.body)));
  }

  render() {
    const agents = [...this.ctx.store.agents.values()].sort((a, b) => a.extension.localeCompare(b.extension, "ru", { numeric: true }));
    this.rows = this.rows || new Map();
    syncRows(this.body, this.rows, agents, (a) => `${a.pbx}|${a.extension}`, (a) => this.makeRow(a), (row, a) => this.fillRow(row, a),
      T("Нет данных об операторах"), 4);
  }

  makeRow(agent) {
    // The name cell wraps (its queue chips too): at 1280 px the side column is narrow, and the pause button must show.
    const cells = [h("td", { class: "num" }), h("td", { class: "agent-name" }), h("td")];
    const toggle = h("button", {
      type: "button", class: "btn btn-small", "data-test": "agent-pause-toggle", "data-extension": agent.extension,
    }, T("Пауза"));
    const row = { cells, toggle, agent };
    toggle.addEventListener("click", () => {
      const a = row.agent;
      busy(toggle, () => this.ctx.socket.request(a.paused ? "queue.unpause" : "queue.pause",
        a.paused ? { extension: a.extension, pbx: a.pbx } : { extension: a.extension, pbx: a.pbx, reason: "admin" }));
    });
    row.tr = h("tr", { "data-test": "agent-row", "data-extension": agent.extension, "data-pbx": agent.pbx }, cells,
      h("td", { class: "right" }, toggle));
    return row;
  }

  fillRow(row, a) {
    row.agent = a;
    row.tr.dataset.state = a.state;
    const paused = new Set(a.paused_queues || []);
    fillCells(row.cells, [
      [h("div", {}, a.extension), pbxCell(a)],
      [h("div", {}, a.name || ""),
        h("div", { class: "queues" }, (a.queues || []).map((q) => h("span", {
          class: `chip chip-small${paused.has(q) ? " chip-paused" : ""}`, title: paused.has(q) ? T("на паузе") : T("очередь"),
        }, q)))],
      [h("span", { class: `badge agent-${a.state}` }, label("agentState", a.state)),
        a.paused && a.paused_reason ? h("div", { class: "sub" }, label("pauseReason", a.paused_reason)) : null],
    ]);
    setText(row.toggle, a.paused ? T("Снять паузу") : T("Пауза"));
    row.toggle.hidden = !(a.queues || []).length;
  }
}

// -- missed-call register: register.js (grouped by caller, claims, results) ---------------------------------

// -- views ---------------------------------------------------------------------------------------------------------

export class AdminView {
  constructor(ctx) {
    this.ctx = ctx;
    ctx.canControl = true;
    // A call's transcript as it goes («Читать» on the board) and the live keyword flags with «Слушать» (live.js).
    ctx.live = this.live = new AdminLive(ctx, { play: () => this.alerts.play() });
    this.board = new CallBoard(ctx);
    this.agents = new AgentsBoard(ctx);
    this.missed = new MissedRegister(ctx);
    this.journal = new Journal({ pbxFilter: true });
    this.alerts = new AlertsPanel(ctx); // the supervisor's alerts, on top (alerts.js)
    this.directory = new Directory(() => {}); // search only: an admin attaches no contact to a call from here
    this.supervisor = new SupervisorSection(ctx); // queues' and agents' figures of the day (supervisor.js)
    this.el = h("div", { class: "admin-layout" },
      h("div", { class: "admin-wide" }, this.supervisor.el),
      h("div", { class: "admin-wide" }, this.alerts.el),
      h("div", { class: "admin-main" }, this.board.el, this.missed.el),
      h("div", { class: "admin-side" }, this.agents.el, this.directory.el),
      h("div", { class: "admin-wide" }, this.journal.el));
    this.reports = new ReportsSection(ctx); // the managers' reports with charts, opened on demand (reports.js)
    this.el.append(h("div", { class: "admin-wide" }, this.reports.el));
    this.missed.load();
    this.journal.load();
    this.alerts.load();
    this.overdue = new RemindersPanel(ctx, { mode: "overdue" }); // reminders escalated to the admins (reminders.js)
    this.alerts.el.after(this.overdue.el);
    this.overdue.load();
    this.crm = new CrmBlock(ctx); // the CRM push's outbox and given-up requests, when a CRM is configured (crm.js)
    this.overdue.el.after(this.crm.el);
    this.crm.load();
    this.board.el.after(this.live.readerEl);
    this.alerts.el.after(this.live.flagsEl);
  }

  onMessage(msg) {
    this.alerts.onMessage(msg);
    this.live.onMessage(msg);
    this.overdue.onMessage(msg);
    this.crm.onMessage(msg);
    if (msg.type === "hello") { // which PBXs the user sees: the journal's filter, the PBX columns
      this.journal.showPbxs();
      this.missed.render();
      this.journal.rerender();
    }
    this.missed.onMessage(msg);
    this.supervisor.onMessage(msg);
    if (msg.type === "call.ended") this.journal.refreshSoon();
    if (msg.type === "state" && msg.scope === "all" && this.ctx.reconnected) {
      this.alerts.load(); // alerts raised or resolved while the socket was down
      this.missed.load();
      this.journal.refreshSoon();
    }
  }

  render() {
    this.board.render();
    this.agents.render();
    this.live.render();
  }
}

export class QaView {
  constructor(ctx) {
    this.ctx = ctx;
    this.journal = new Journal({ pbxFilter: true });
    this.missed = new MissedRegister(ctx, { readOnly: true }); // the register without controls (register.js)
    this.el = h("div", { class: "qa-layout" }, this.missed.el, this.journal.el);
    this.reports = new ReportsSection(ctx); // the managers' reports (reports.js)
    this.el.append(this.reports.el);
    this.missed.load();
    this.journal.load();
  }

  onMessage(msg) {
    if (msg.type === "hello") {
      this.journal.showPbxs();
      this.journal.rerender();
      if (this.ctx.reconnected) this.journal.refreshSoon(); // calls ended while the socket was down
      if (this.ctx.reconnected) this.missed.load();
      this.missed.render();
    }
    this.missed.onMessage(msg); // claims and results, live (read-only)
    if (msg.type === "call.ended") this.journal.refreshSoon();
  }

  render() {}
}
