// The admin's view (live call board, agents, missed-call register, journal) and the QA view (journal).

import { Journal } from "./journal.js";
import { api, query } from "./net.js";
import {
  busy, clear, errorText, fmtDateTime, fmtDuration, fmtShortDateTime, fmtTime, h, label, manyPbxs, pbxName, setText, toast,
} from "./util.js";

const EXTENSION = /^[0-9]{1,10}$/;
const EXT_KEY = "cti.callbackExtension";
// The register is read in pages of REGISTER_PAGE open entries, at most REGISTER_PAGES of them.
const REGISTER_PAGE = 200;
const REGISTER_PAGES = 50;

/** The PBX of a call or an entry, by name: only when the user sees several (else null: no column). */
function pbxCell(item) {
  return manyPbxs() ? h("span", { class: "chip chip-small pbx", "data-test": "pbx-name" }, pbxName(item.pbx)) : null;
}

function party(number, name) {
  return [h("div", { class: "num" }, number || "скрыт"), name ? h("div", { class: "sub" }, name) : null];
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
      button.textContent = "Точно?";
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
      h("div", { class: "panel-head" }, h("h2", {}, "Звонки сейчас"), this.count),
      h("div", { class: "table-wrap" }, h("table", { class: "table" },
        h("thead", {}, h("tr", {}, ["Начало", "Длит.", "Абонент", "Набран", "Очередь", "Операторы", "Состояние", ""]
          .map((t) => h("th", {}, t)))),
        this.body)));
  }

  render() {
    const calls = [...this.ctx.store.calls.values()].sort((a, b) => a.startedMs - b.startedMs);
    setText(this.count, calls.length ? String(calls.length) : "");
    this.rows = this.rows || new Map();
    syncRows(this.body, this.rows, calls, (c) => c.key, (call) => this.makeRow(call), (row, call) => this.fillRow(row, call),
      "Сейчас звонков нет", 8);
  }

  makeRow(call) {
    const cells = [
      h("td", { class: "nowrap" }), h("td", { class: "right nowrap" }), h("td"), h("td", { class: "num" }), h("td"),
      h("td"), h("td"),
    ];
    const action = h("td", { class: "right" }, this.ctx.canControl
      ? confirmButton("Завершить", { class: "btn btn-small btn-danger", "data-test": "board-hangup" },
        () => this.ctx.socket.request("hangup", { linkedid: call.linkedid, pbx: call.pbx }))
      : null);
    const tr = h("tr", { "data-test": "board-row", "data-linkedid": call.linkedid, "data-pbx": call.pbx }, cells, action);
    return { tr, cells };
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
      [...party(outbound ? call.called : call.caller, outbound ? null : call.caller_name),
        cardName(call) ? h("div", { class: "sub board-card", "data-test": "board-card-name", title: "по справочнику" },
          cardName(call)) : null],
      outbound ? `от ${call.caller || "?"}` : call.called || "",
      call.queue || "",
      legs.length
        ? legs.map((l) => h("span", { class: `chip leg-${l.state}`, title: agentName(l.extension) || "" },
          `${l.extension} · ${label("legState", l.state)}`))
        : h("span", { class: "muted" }, "ожидает"),
      [h("span", { class: `badge call-${call.state}` }, call.state === "talking" ? "разговор" : "вызов"),
        call.transferred_to ? h("div", { class: "sub" }, `перевод → ${call.transferred_to}`) : null],
    ]);
  }
}

// -- agents board ---------------------------------------------------------------------------------------------

class AgentsBoard {
  constructor(ctx) {
    this.ctx = ctx;
    this.body = h("tbody");
    this.el = h("section", { class: "panel", "data-test": "agents-board" },
      h("div", { class: "panel-head" }, h("h2", {}, "Операторы")),
      h("div", { class: "table-wrap" }, h("table", { class: "table" },
        h("thead", {}, h("tr", {}, ["Доб.", "Оператор", "Состояние", ""].map((t) => h("th", {}, t)))),
        this.body)));
  }

  render() {
    const agents = [...this.ctx.store.agents.values()].sort((a, b) => a.extension.localeCompare(b.extension, "ru", { numeric: true }));
    this.rows = this.rows || new Map();
    syncRows(this.body, this.rows, agents, (a) => `${a.pbx}|${a.extension}`, (a) => this.makeRow(a), (row, a) => this.fillRow(row, a),
      "Нет данных об операторах", 4);
  }

  makeRow(agent) {
    const cells = [h("td", { class: "num" }), h("td", { class: "nowrap" }), h("td")];
    const toggle = h("button", {
      type: "button", class: "btn btn-small", "data-test": "agent-pause-toggle", "data-extension": agent.extension,
    }, "Пауза");
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
          class: `chip chip-small${paused.has(q) ? " chip-paused" : ""}`, title: paused.has(q) ? "на паузе" : "очередь",
        }, q)))],
      [h("span", { class: `badge agent-${a.state}` }, label("agentState", a.state)),
        a.paused && a.paused_reason ? h("div", { class: "sub" }, label("pauseReason", a.paused_reason)) : null],
    ]);
    setText(row.toggle, a.paused ? "Снять паузу" : "Пауза");
    row.toggle.hidden = !(a.queues || []).length;
  }
}

// -- missed-call register -----------------------------------------------------------------------------------

/** Every open entry of the register, page after page by the server's cursor (`next` → `?after=`): the
 * entries opened meanwhile come last, none twice. At most REGISTER_PAGES pages are read. */
async function openEntries() {
  const entries = [];
  let after = null;
  for (let page = 0; page < REGISTER_PAGES; page++) {
    const data = await api(`/api/missed${query({ status: "open", limit: REGISTER_PAGE, after })}`);
    entries.push(...((data && data.missed) || []));
    after = data && data.next;
    if (!after) break;
  }
  return entries;
}

class MissedRegister {
  constructor(ctx) {
    this.ctx = ctx;
    this.entries = new Map(); // id -> entry (open ones only are shown)
    this.count = h("span", { class: "count", "data-test": "missed-count" });
    this.status = h("span", { class: "muted" });
    this.extLabel = h("button", { type: "button", class: "link", "data-test": "callback-extension-change",
      onclick: () => this.askExtension() });
    this.body = h("tbody");
    this.buildDialogs();
    this.el = h("section", { class: "panel", "data-test": "missed-register" },
      h("div", { class: "panel-head" }, h("h2", {}, "Пропущенные"), this.count, this.status,
        h("span", { class: "spacer" }), h("span", { class: "muted" }, "перезванивать с: "), this.extLabel),
      h("div", { class: "table-wrap" }, h("table", { class: "table" },
        h("thead", {}, h("tr", {}, ["Когда", "Абонент", "Набран / очередь", "Причина", "Ждал", "Звонили", ""]
          .map((t) => h("th", {}, t)))),
        this.body)),
      this.closeDialog, this.extDialog);
    this.showExtension();
  }

  get extension() {
    return this.ctx.store.me.extension || localStorage.getItem(EXT_KEY) || "";
  }

  showExtension() {
    setText(this.extLabel, this.extension ? `${this.extension} (изменить)` : "не задан (задать)");
  }

  buildDialogs() {
    this.comment = h("textarea", { rows: 3, maxlength: 1000, "data-test": "close-comment",
      placeholder: "например: перезвонили, записан на ТО" });
    this.closeTitle = h("p", { class: "muted", "data-test": "close-what" });
    this.closeSubmit = h("button", { type: "submit", class: "btn btn-primary", "data-test": "close-submit" }, "Закрыть запись");
    this.closeDialog = h("dialog", { class: "dialog", "data-test": "close-dialog" },
      h("form", { method: "dialog", onsubmit: (e) => { e.preventDefault(); this.submitClose(); } },
        h("h3", {}, "Закрыть пропущенный"), this.closeTitle,
        h("label", { class: "stack" }, "Комментарий", this.comment),
        h("div", { class: "dialog-actions" },
          h("button", { type: "button", class: "btn", "data-test": "close-cancel", onclick: () => this.closeDialog.close() }, "Отмена"),
          this.closeSubmit)));

    this.extInput = h("input", { type: "text", inputmode: "numeric", pattern: "[0-9]{1,10}", size: 8,
      "data-test": "callback-extension", placeholder: "например 104" });
    this.extSubmit = h("button", { type: "submit", class: "btn btn-primary", "data-test": "callback-extension-save" }, "Сохранить");
    this.extDialog = h("dialog", { class: "dialog", "data-test": "callback-dialog" },
      h("form", { method: "dialog", onsubmit: (e) => { e.preventDefault(); this.saveExtension(); } },
        h("h3", {}, "С какого телефона перезванивать?"),
        h("p", { class: "muted" }, "Сначала зазвонит этот добавочный, затем АТС наберёт клиента."),
        h("label", { class: "stack" }, "Добавочный", this.extInput),
        h("div", { class: "dialog-actions" },
          h("button", { type: "button", class: "btn", onclick: () => this.extDialog.close() }, "Отмена"),
          this.extSubmit)));
  }

  async load() {
    setText(this.status, "загрузка…");
    try {
      const fresh = new Map();
      for (const e of await openEntries()) fresh.set(e.id, this.entries.get(e.id) || e);
      // Entries that arrived by events while loading stay (the event is newer than the response).
      for (const [id, e] of this.entries) if (!fresh.has(id) && e.fromEvent) fresh.set(id, e);
      this.entries = fresh;
      setText(this.status, "");
    } catch (err) {
      setText(this.status, errorText(err));
    }
    this.render();
  }

  onMessage(msg) {
    if (msg.type === "missed.new" || msg.type === "missed.updated") {
      this.entries.set(msg.entry.id, { ...msg.entry, fromEvent: true });
      this.render();
    }
  }

  render() {
    const open = [...this.entries.values()].filter((e) => e.status === "open")
      .sort((a, b) => String(b.missed_at || "").localeCompare(String(a.missed_at || "")));
    setText(this.count, open.length ? String(open.length) : "");
    clear(this.body);
    if (!open.length) {
      this.body.append(h("tr", { class: "empty" }, h("td", { colspan: 7 }, "Открытых пропущенных нет")));
      return;
    }
    for (const e of open) {
      const callback = h("button", { type: "button", class: "btn btn-small btn-primary", "data-test": "missed-callback",
        disabled: !e.caller, title: e.caller ? "" : "номер скрыт" }, "Перезвонить");
      callback.addEventListener("click", () => this.callBack(e, callback));
      this.body.append(h("tr", { "data-test": "missed-row", "data-id": e.id, "data-linkedid": e.linkedid, "data-pbx": e.pbx },
        h("td", { class: "nowrap", title: fmtDateTime(e.missed_at) }, h("div", {}, fmtShortDateTime(e.missed_at)), pbxCell(e)),
        h("td", {}, party(e.caller, e.caller_name)),
        h("td", {}, h("div", { class: "num" }, e.called || ""), e.queue ? h("div", { class: "sub" }, e.queue) : null),
        h("td", {}, label("reason", e.reason)),
        h("td", { class: "right" }, fmtDuration(e.ring_seconds)),
        h("td", { class: "num" }, (e.agents_rung || []).join(", ")),
        h("td", { class: "right nowrap" }, callback, " ",
          h("button", { type: "button", class: "btn btn-small", "data-test": "missed-close", onclick: () => this.openClose(e) },
            "Закрыть"))));
    }
  }

  openClose(entry) {
    this.closing = entry;
    setText(this.closeTitle, `${entry.caller || "номер скрыт"}${entry.caller_name ? `, ${entry.caller_name}` : ""} — ${fmtDateTime(entry.missed_at)}`);
    this.comment.value = "";
    this.closeDialog.showModal();
    this.comment.focus();
  }

  async submitClose() {
    const entry = this.closing;
    if (!entry) return;
    const comment = this.comment.value.trim();
    const ok = await busy(this.closeSubmit, async () => {
      await this.ctx.socket.request("missed.close", { missed_id: entry.id, ...(comment ? { comment } : {}) });
      return true;
    });
    if (ok) {
      this.closeDialog.close();
      toast("Запись закрыта");
      // missed.updated normally arrives first; if not, the entry is closed all the same.
      const current = this.entries.get(entry.id);
      if (current && current.status === "open") this.entries.set(entry.id, { ...current, status: "closed", comment });
      this.render();
    }
  }

  askExtension(then = null) {
    this.afterExtension = then;
    this.extInput.value = this.extension;
    this.extDialog.showModal();
    this.extInput.focus();
  }

  saveExtension() {
    const value = this.extInput.value.trim();
    if (!EXTENSION.test(value)) {
      toast("Добавочный: от 1 до 10 цифр", "error");
      return;
    }
    localStorage.setItem(EXT_KEY, value);
    this.extDialog.close();
    this.showExtension();
    const then = this.afterExtension;
    this.afterExtension = null;
    if (then) then();
  }

  callBack(entry, button) {
    if (!this.extension) {
      this.askExtension(() => this.callBack(entry, button));
      return;
    }
    const extension = this.extension;
    busy(button, async () => {
      await this.ctx.socket.request("originate", { number: entry.caller, extension, pbx: entry.pbx });
      toast(`Перезваниваем ${entry.caller}: сначала зазвонит телефон ${extension}`);
    });
  }
}

// -- views ---------------------------------------------------------------------------------------------------------

export class AdminView {
  constructor(ctx) {
    this.ctx = ctx;
    ctx.canControl = true;
    this.board = new CallBoard(ctx);
    this.agents = new AgentsBoard(ctx);
    this.missed = new MissedRegister(ctx);
    this.journal = new Journal({ pbxFilter: true });
    this.el = h("div", { class: "admin-layout" },
      h("div", { class: "admin-main" }, this.board.el, this.missed.el),
      h("div", { class: "admin-side" }, this.agents.el),
      h("div", { class: "admin-wide" }, this.journal.el));
    this.missed.load();
    this.journal.load();
  }

  onMessage(msg) {
    if (msg.type === "hello") { // which PBXs the user sees: the journal's filter, the PBX columns
      this.journal.showPbxs();
      this.missed.render();
      this.journal.rerender();
    }
    this.missed.onMessage(msg);
    if (msg.type === "call.ended") this.journal.refreshSoon();
    if (msg.type === "state" && msg.scope === "all" && this.ctx.reconnected) {
      this.missed.load();
      this.journal.refreshSoon();
    }
  }

  render() {
    this.board.render();
    this.agents.render();
  }
}

export class QaView {
  constructor(ctx) {
    this.ctx = ctx;
    this.journal = new Journal({ pbxFilter: true });
    this.el = h("div", { class: "qa-layout" }, this.journal.el);
    this.journal.load();
  }

  onMessage(msg) {
    if (msg.type === "hello") {
      this.journal.showPbxs();
      this.journal.rerender();
      if (this.ctx.reconnected) this.journal.refreshSoon(); // calls ended while the socket was down
    }
    if (msg.type === "call.ended") this.journal.refreshSoon();
  }

  render() {}
}
