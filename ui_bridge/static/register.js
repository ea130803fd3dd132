// The missed-call register a team shares (admins work it, QA reads it): one row per caller, grouped by the
// server (GET /api/missed/groups: the count, first and last time, reasons, the entries), who is calling the
// number back now ("Перезванивает Анна", live: missed.claimed / missed.released), what earlier call-backs came
// to (missed.result_recorded). A row expands to its entries. docs/missed-calls.md#a-register-a-team-shares.

import { translations } from "./i18n.js";
import { api, query } from "./net.js";
import {
  busy, clear, errorText, errorToast, fmtDateTime, fmtDuration, fmtShortDateTime, h, label, manyPbxs, pbxName, setText, shownNumber,
  toast,
} from "./util.js";

const T = translations({
  "Пропущенные": "Missed calls",
  "загрузка…": "loading…",
  "перезванивать с: ": "call back from: ",
  "{ext} (изменить)": "{ext} (change)",
  "не задан (задать)": "not set (set it)",
  "Когда": "When",
  "Абонент": "Caller",
  "Причины": "Reasons",
  "Кто перезванивает": "Calling back",
  "Результат": "Result",
  "Открытых пропущенных нет": "No open missed calls",
  "скрыт": "withheld",
  "номер скрыт": "number withheld",
  "первый: {when}": "first: {when}",
  "Перезванивает {name}": "{name} is calling back",
  "до {time}": "until {time}",
  "Беру": "I'll call",
  "Отпустить": "Release",
  "Перезвонить": "Call back",
  "Закрыть": "Close",
  "Записать результат": "Record the result",
  "Показать звонки": "Show the calls",
  "Скрыть звонки": "Hide the calls",
  "Уже перезванивает {name}": "{name} is calling back already",
  "Номер за вами на {minutes} мин": "The number is yours for {minutes} min",
  "Номер свободен": "The number is free",
  "Перезваниваем {number}: сначала зазвонит телефон {ext}": "Calling {number} back: phone {ext} rings first",
  "Закрыть пропущенный": "Close the missed call",
  "Комментарий": "Comment",
  "например: перезвонили, записан на ТО": "e.g. called back, booked a service",
  "Отмена": "Cancel",
  "Закрыть запись": "Close the entry",
  "Запись закрыта": "Entry closed",
  "Записи закрыты: {n}": "Entries closed: {n}",
  "С какого телефона перезванивать?": "Which phone to call back from?",
  "Сначала зазвонит этот добавочный, затем АТС наберёт клиента.":
    "This extension rings first, then the PBX dials the customer.",
  "Добавочный": "Extension",
  "например 104": "e.g. 104",
  "Сохранить": "Save",
  "Добавочный: от 1 до 10 цифр": "Extension: 1 to 10 digits",
  "Чем закончился звонок?": "How did the call end?",
  "Результат записан": "Result recorded",
  "дозвонились": "reached",
  "не ответил": "no answer",
  "занято": "busy",
  "не тот номер": "wrong number",
  "оставили сообщение": "left a message",
  "Ждал": "Waited",
  "Набран / очередь": "Dialled / queue",
  "Звонили": "Rang",
  "другое": "other",
});

const EXTENSION = /^[0-9]{1,10}$/;
const EXT_KEY = "cti.callbackExtension";
// The register is read in pages of PAGE groups, at most PAGES of them.
const PAGE = 500;
const PAGES = 50;
// A new or changed entry regroups the register: one reload for a burst of them.
const RELOAD_DELAY_MS = 300;

const RESULTS = ["reached", "no_answer", "busy", "wrong_number", "left_message"];
const RESULT_WORDS = {
  reached: T("дозвонились"), no_answer: T("не ответил"), busy: T("занято"), wrong_number: T("не тот номер"),
  left_message: T("оставили сообщение"),
};

/** A call-back's result in the panel's words (one this panel does not know: a neutral word, not the token). */
function resultText(result) {
  return RESULT_WORDS[result] || T("другое");
}

/** A group's identity: its PBX and number; a withheld caller's entry alone. */
function groupKey(g) {
  return `${g.pbx}|${g.number || `#${g.entries[0].id}`}`;
}

function pbxCell(item) {
  return manyPbxs() ? h("span", { class: "chip chip-small pbx", "data-test": "pbx-name" }, pbxName(item.pbx)) : null;
}

/** Every group of the register, page after page by the server's cursor. */
async function allGroups() {
  const groups = [];
  let after = null;
  for (let page = 0; page < PAGES; page++) {
    const data = await api(`/api/missed/groups${query({ limit: PAGE, after })}`);
    groups.push(...((data && data.groups) || []));
    after = data && data.next;
    if (!after) break;
  }
  return groups;
}

export class MissedRegister {
  /** ``readOnly``: QA's register, with no buttons (docs/panel.md: QA reads the register). */
  constructor(ctx, { readOnly = false } = {}) {
    this.ctx = ctx;
    this.readOnly = readOnly;
    this.groups = [];
    this.expanded = new Set();
    this.count = h("span", { class: "count", "data-test": "missed-count" });
    this.status = h("span", { class: "muted" });
    this.extLabel = h("button", { type: "button", class: "link", "data-test": "callback-extension-change",
      onclick: () => this.askExtension() });
    this.body = h("tbody");
    this.buildDialogs();
    const heads = [T("Когда"), T("Абонент"), T("Причины"), T("Кто перезванивает"), T("Результат"), ""];
    this.el = h("section", { class: "panel", "data-test": "missed-register", "data-readonly": readOnly ? "1" : "0" },
      h("div", { class: "panel-head" }, h("h2", {}, T("Пропущенные")), this.count, this.status,
        h("span", { class: "spacer" }),
        readOnly ? null : h("span", { class: "muted" }, T("перезванивать с: ")), readOnly ? null : this.extLabel),
      h("div", { class: "table-wrap" }, h("table", { class: "table register" },
        h("thead", {}, h("tr", {}, heads.map((t) => h("th", {}, t)))), this.body)),
      readOnly ? null : this.closeDialog, readOnly ? null : this.extDialog, readOnly ? null : this.resultDialog);
    this.showExtension();
  }

  get me() {
    return (this.ctx.store.me && this.ctx.store.me.name) || "";
  }

  get extension() {
    return (this.ctx.store.me && this.ctx.store.me.extension) || localStorage.getItem(EXT_KEY) || "";
  }

  showExtension() {
    setText(this.extLabel, this.extension ? T("{ext} (изменить)", { ext: this.extension }) : T("не задан (задать)"));
  }

  // -- loading and live messages -------------------------------------------------------------------------------

  async load() {
    setText(this.status, T("загрузка…"));
    try {
      this.groups = await allGroups();
      setText(this.status, "");
    } catch (err) {
      setText(this.status, errorText(err));
    }
    this.render();
  }

  reloadSoon() {
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => this.load(), RELOAD_DELAY_MS);
  }

  find(pbx, number) {
    return this.groups.find((g) => g.pbx === pbx && g.number === number);
  }

  onMessage(msg) {
    if (msg.type === "missed.new" || msg.type === "missed.updated") {
      this.reloadSoon(); // the grouping is the server's
    } else if (msg.type === "missed.claimed") {
      const g = this.find(msg.claim.pbx, msg.claim.number);
      if (g) g.claim = msg.claim;
      else this.reloadSoon();
      this.render();
    } else if (msg.type === "missed.released") {
      const g = this.find(msg.pbx, msg.number);
      if (g && g.claim && g.claim.by === msg.by) g.claim = null;
      this.render();
    } else if (msg.type === "missed.result_recorded") {
      const g = this.find(msg.result.pbx, msg.result.number);
      if (g) g.results = [msg.result, ...(g.results || [])];
      this.render();
    }
  }

  // -- drawing ---------------------------------------------------------------------------------------------------

  render() {
    const open = this.groups.reduce((n, g) => n + g.count, 0);
    setText(this.count, open ? String(open) : "");
    clear(this.body);
    if (!this.groups.length) {
      this.body.append(h("tr", { class: "empty" }, h("td", { colspan: 6 }, T("Открытых пропущенных нет"))));
      return;
    }
    for (const g of this.groups) {
      this.body.append(this.row(g));
      if (this.expanded.has(groupKey(g))) this.body.append(this.entriesRow(g));
    }
  }

  row(g) {
    const newest = g.entries[0];
    const key = groupKey(g);
    const shown = shownNumber(newest, "caller") || g.caller;
    const name = g.contact_name || g.caller_name;
    const expand = h("button", { type: "button", class: "link", "data-test": "missed-expand",
      title: this.expanded.has(key) ? T("Скрыть звонки") : T("Показать звонки"),
      onclick: () => { this.expanded.has(key) ? this.expanded.delete(key) : this.expanded.add(key); this.render(); },
    }, this.expanded.has(key) ? "▾" : "▸");
    const last = (g.results || [])[0];
    return h("tr", { "data-test": "missed-row", "data-id": newest.id, "data-linkedid": newest.linkedid,
      "data-pbx": g.pbx, "data-number": g.number || "", "data-count": g.count },
    h("td", { class: "nowrap", title: fmtDateTime(g.last_at) }, h("div", {}, expand, " ", fmtShortDateTime(g.last_at)),
      g.count > 1 ? h("div", { class: "sub" }, T("первый: {when}", { when: fmtShortDateTime(g.first_at) })) : null,
      pbxCell(g)),
    h("td", {}, h("div", { class: "num" }, shown || T("скрыт"),
      g.count > 1 ? h("span", { class: "chip chip-small", "data-test": "missed-times" }, `×${g.count}`) : null),
    name ? h("div", { class: "sub", "data-test": "missed-name" }, name) : null),
    h("td", {}, (g.reasons || []).map((r) => label("reason", r)).join(", ")),
    h("td", {}, this.claimCell(g)),
    h("td", { "data-test": "missed-result" }, last
      ? [h("div", {}, resultText(last.result)),
        h("div", { class: "sub" }, `${last.by}, ${fmtShortDateTime(last.at)}${last.comment ? `: ${last.comment}` : ""}`)]
      : ""),
    h("td", { class: "right row-actions" }, this.readOnly ? null : this.actions(g)));
  }

  claimCell(g) {
    if (!g.claim) return "";
    const mine = g.claim.by === this.me;
    return h("span", { class: `chip ${mine ? "chip-mine" : "chip-taken"}`, "data-test": "missed-claim",
      "data-by": g.claim.by, title: T("до {time}", { time: fmtDateTime(g.claim.until) }) },
    T("Перезванивает {name}", { name: g.claim.by_name || g.claim.by }));
  }

  actions(g) {
    const taken = g.claim && g.claim.by !== this.me;
    const mine = g.claim && g.claim.by === this.me;
    const out = [];
    if (g.number) {
      out.push(mine
        ? h("button", { type: "button", class: "btn btn-small", "data-test": "missed-release",
          onclick: (e) => this.release(g, e.currentTarget) }, T("Отпустить"))
        : h("button", { type: "button", class: "btn btn-small", "data-test": "missed-claim-button",
          disabled: taken, onclick: (e) => this.claim(g, e.currentTarget) }, T("Беру")));
    }
    const callback = h("button", { type: "button", class: "btn btn-small btn-primary", "data-test": "missed-callback",
      disabled: !g.caller || taken, title: g.caller ? "" : T("номер скрыт") }, T("Перезвонить"));
    callback.addEventListener("click", () => this.callBack(g, callback));
    out.push(callback);
    if (g.number) {
      out.push(h("button", { type: "button", class: "btn btn-small", "data-test": "missed-result-button",
        disabled: taken, onclick: () => this.openResult(g) }, T("Записать результат")));
    }
    out.push(h("button", { type: "button", class: "btn btn-small", "data-test": "missed-close",
      onclick: () => this.openClose(g) }, T("Закрыть")));
    return out.flatMap((b) => [b, " "]);
  }

  entriesRow(g) {
    const heads = [T("Когда"), T("Набран / очередь"), T("Причины"), T("Ждал"), T("Звонили")];
    return h("tr", { class: "sub-row", "data-test": "missed-entries" }, h("td", { colspan: 6 },
      h("table", { class: "table table-inner" }, h("thead", {}, h("tr", {}, heads.map((t) => h("th", {}, t)))),
        h("tbody", {}, g.entries.map((e) => h("tr", { "data-test": "missed-entry", "data-id": e.id },
          h("td", { class: "nowrap" }, fmtDateTime(e.missed_at)),
          h("td", {}, h("div", { class: "num" }, shownNumber(e, "called") || ""), e.queue ? h("div", { class: "sub" }, e.queue) : null),
          h("td", {}, label("reason", e.reason)),
          h("td", { class: "right" }, fmtDuration(e.ring_seconds)),
          h("td", { class: "num" }, (e.agents_rung || []).join(", "))))))));
  }

  // -- claims ----------------------------------------------------------------------------------------------------

  async claim(g, button) {
    try {
      button.disabled = true;
      const data = await this.ctx.socket.request("missed.claim", { number: g.number, pbx: g.pbx });
      if (data && data.claim) g.claim = data.claim;
      const minutes = data && data.claim
        ? Math.round((Date.parse(data.claim.until) - Date.parse(data.claim.claimed_at)) / 60000) : "";
      toast(T("Номер за вами на {minutes} мин", { minutes }));
    } catch (err) {
      if (err && err.code === "conflict") {
        // Who holds the number: the error names them (``by``); the register, reloaded, says it too.
        if (!this.find(g.pbx, g.number) || !(this.find(g.pbx, g.number) || {}).claim) await this.load();
        const now = this.find(g.pbx, g.number);
        const who = now && now.claim ? now.claim.by_name || now.claim.by : err.by || "";
        errorToast(err, who ? T("Уже перезванивает {name}", { name: who }) : errorText(err));
      } else {
        errorToast(err);
      }
    }
    this.render();
  }

  release(g, button) {
    busy(button, async () => {
      await this.ctx.socket.request("missed.release", { number: g.number, pbx: g.pbx });
      g.claim = null;
      toast(T("Номер свободен"));
      this.render();
    });
  }

  // -- dialogs ---------------------------------------------------------------------------------------------------

  buildDialogs() {
    this.comment = h("textarea", { rows: 3, maxlength: 1000, "data-test": "close-comment",
      placeholder: T("например: перезвонили, записан на ТО") });
    this.closeTitle = h("p", { class: "muted", "data-test": "close-what" });
    this.closeSubmit = h("button", { type: "submit", class: "btn btn-primary", "data-test": "close-submit" }, T("Закрыть запись"));
    this.closeDialog = h("dialog", { class: "dialog", "data-test": "close-dialog" },
      h("form", { method: "dialog", onsubmit: (e) => { e.preventDefault(); this.submitClose(); } },
        h("h3", {}, T("Закрыть пропущенный")), this.closeTitle,
        h("label", { class: "stack" }, T("Комментарий"), this.comment),
        h("div", { class: "dialog-actions" },
          h("button", { type: "button", class: "btn", "data-test": "close-cancel", onclick: () => this.closeDialog.close() }, T("Отмена")),
          this.closeSubmit)));

    this.extInput = h("input", { type: "text", inputmode: "numeric", pattern: "[0-9]{1,10}", size: 8,
      "data-test": "callback-extension", placeholder: T("например 104") });
    this.extSubmit = h("button", { type: "submit", class: "btn btn-primary", "data-test": "callback-extension-save" }, T("Сохранить"));
    this.extDialog = h("dialog", { class: "dialog", "data-test": "callback-dialog" },
      h("form", { method: "dialog", onsubmit: (e) => { e.preventDefault(); this.saveExtension(); } },
        h("h3", {}, T("С какого телефона перезванивать?")),
        h("p", { class: "muted" }, T("Сначала зазвонит этот добавочный, затем АТС наберёт клиента.")),
        h("label", { class: "stack" }, T("Добавочный"), this.extInput),
        h("div", { class: "dialog-actions" },
          h("button", { type: "button", class: "btn", onclick: () => this.extDialog.close() }, T("Отмена")),
          this.extSubmit)));

    this.resultSelect = h("select", { "data-test": "result-choice" },
      RESULTS.map((r) => h("option", { value: r }, resultText(r))));
    this.resultComment = h("textarea", { rows: 3, maxlength: 1000, "data-test": "result-comment" });
    this.resultTitle = h("p", { class: "muted", "data-test": "result-what" });
    this.resultSubmit = h("button", { type: "submit", class: "btn btn-primary", "data-test": "result-submit" }, T("Сохранить"));
    this.resultDialog = h("dialog", { class: "dialog", "data-test": "result-dialog" },
      h("form", { method: "dialog", onsubmit: (e) => { e.preventDefault(); this.submitResult(); } },
        h("h3", {}, T("Чем закончился звонок?")), this.resultTitle,
        h("label", { class: "stack" }, T("Результат"), this.resultSelect),
        h("label", { class: "stack" }, T("Комментарий"), this.resultComment),
        h("div", { class: "dialog-actions" },
          h("button", { type: "button", class: "btn", onclick: () => this.resultDialog.close() }, T("Отмена")),
          this.resultSubmit)));
  }

  describe(g) {
    const name = g.contact_name || g.caller_name;
    return `${shownNumber(g.entries[0], "caller") || T("номер скрыт")}${name ? `, ${name}` : ""} — ${fmtDateTime(g.last_at)}`;
  }

  openClose(g) {
    this.closing = g;
    setText(this.closeTitle, this.describe(g));
    this.comment.value = "";
    this.closeDialog.showModal();
    this.comment.focus();
  }

  async submitClose() {
    const g = this.closing;
    if (!g) return;
    const comment = this.comment.value.trim();
    const ok = await busy(this.closeSubmit, async () => {
      for (const e of g.entries) {
        await this.ctx.socket.request("missed.close", { missed_id: e.id, ...(comment ? { comment } : {}) });
      }
      return true;
    });
    if (ok) {
      this.closeDialog.close();
      toast(g.entries.length > 1 ? T("Записи закрыты: {n}", { n: g.entries.length }) : T("Запись закрыта"));
      this.groups = this.groups.filter((x) => x !== g); // missed.updated regroups it from the server too
      this.render();
    }
  }

  openResult(g) {
    this.resulting = g;
    setText(this.resultTitle, this.describe(g));
    this.resultSelect.value = "no_answer";
    this.resultComment.value = "";
    this.resultDialog.showModal();
  }

  async submitResult() {
    const g = this.resulting;
    if (!g) return;
    const comment = this.resultComment.value.trim();
    const ok = await busy(this.resultSubmit, async () => {
      await this.ctx.socket.request("missed.result", { number: g.number, pbx: g.pbx, result: this.resultSelect.value,
        ...(comment ? { comment } : {}) });
      return true;
    });
    if (ok) {
      this.resultDialog.close();
      toast(T("Результат записан"));
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
      toast(T("Добавочный: от 1 до 10 цифр"), "error");
      return;
    }
    localStorage.setItem(EXT_KEY, value);
    this.extDialog.close();
    this.showExtension();
    const then = this.afterExtension;
    this.afterExtension = null;
    if (then) then();
  }

  callBack(g, button) {
    if (!this.extension) {
      this.askExtension(() => this.callBack(g, button));
      return;
    }
    const extension = this.extension;
    busy(button, async () => {
      await this.ctx.socket.request("originate", { number: g.caller, extension, pbx: g.pbx });
      toast(T("Перезваниваем {number}: сначала зазвонит телефон {ext}", { number: shownNumber(g.entries[0], "caller") || g.caller, ext: extension }));
    });
  }
}
