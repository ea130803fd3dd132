// The contact script beside the caller card: the agent's open runs, each at its step, answered with a click or a
// typed value. The runs live on the server (ui_bridge/script_desk.py): a reload or a second tab asks for them
// (script.runs) and every change comes as script.run, so this module only shows what the server says and sends what
// the agent does. Caller and client names are text (h() builds text nodes), never markup. Keyboard: each step opens
// with its first field (or its main button) focused, Tab between fields, Enter = next; a refused answer keeps what
// was typed and shows each field's problem beside it, in the panel's language.

import { translations } from "./i18n.js";
import { api, query } from "./net.js";
import { PushedWhileLoading, busy, callKey, errorToast, h, toast } from "./util.js";

const T = translations({
  "Начать сценарий": "Start the script",
  "визит": "walk-in",
  "интернет": "web enquiry",
  "звонок": "call",
  "мобильный": "mobile",
  "приглашение": "invitation",
  "Далее": "Next",
  "Назад": "Back",
  "Отменить сценарий": "Discard the script",
  "Причина отмены": "Reason to discard",
  "Укажите причину отмены": "Say why the script is discarded",
  "Отменить": "Discard",
  "Звонок завершён: закончите сценарий или отмените его": "The call has ended: finish the script or discard it",
  "Клиент из карточки": "The client on the card",
  "Фамилия, телефон или госномер": "Surname, phone or plate",
  "Найти": "Find",
  "Никого не нашли": "Nobody found",
  "Новый клиент": "New client",
  "Номер звонящего: {number}": "The caller's number: {number}",
  "Имя или название": "Name",
  "Телефон": "Phone",
  "Марка": "Make",
  "Модель": "Model",
  "Госномер": "Plate",
  "Ни один из них": "None of these",
  "Нет прошлых звонков": "No earlier calls",
  "Переводим на {name}…": "Transferring to {name}…",
  "Когда перезвонить": "When to call back",
  "Через час": "In an hour",
  "Через 2 часа": "In 2 hours",
  "Завтра": "Tomorrow",
  "Кто перезвонит": "Who calls back",
  "Номер": "Number",
  "Комментарий": "Note",
  "Создать": "Create",
  "Зарегистрировать": "Register",
  "Завершить": "Close",
  "Обращение зарегистрировано": "The contact is registered",
  "Сценарий закрыт": "The script is closed",
  "{name} ответил(а): звонок передан": "{name} answered: the call is passed on",
  "Сотрудник не ответил: оставьте напоминание": "The employee did not answer: leave a reminder",
  "Перевод не удался: оставьте напоминание": "The transfer failed: leave a reminder",
  "Обязательное поле": "Required",
  "Проверьте значение": "Check the value",
  "Не похоже на номер телефона": "Not a phone number",
  "Не похоже на госномер": "Not a licence plate",
  "Уточните марку: подходит несколько": "Type more of the make: several match",
  "Не похоже на дату": "Not a date",
  "Не похоже на время": "Not a time",
  "Это время уже прошло": "This time is in the past",
  "Слишком длинно": "Too long",
  "Выберите вариант": "Pick one",
  "Сценарий изменился в другой вкладке: показан как есть": "The script changed in another tab: shown as it is now",
  "Сюда нельзя вернуться": "There is no going back here",
  "Сценарий уже закрыт": "The script is already closed",
  "Оформить жалобу": "File a complaint",
});

const CHANNELS = { visit: T("визит"), internet: T("интернет"), phone: T("звонок"), mobile: T("мобильный"),
  invitation: T("приглашение") };

/** A field's error from the server (English, for whoever debugs) in the panel's words. */
const FIELD_WORDS = [
  [/^required/, T("Обязательное поле")],
  [/phone|extension/, T("Не похоже на номер телефона")],
  [/licence plate/, T("Не похоже на госномер")],
  [/may be .*type more letters/, T("Уточните марку: подходит несколько")],
  [/in the past/, T("Это время уже прошло")],
  [/not a date|expected a date/, T("Не похоже на дату")],
  [/not a time|expected a time/, T("Не похоже на время")],
  [/too long/, T("Слишком длинно")],
  [/^one of/, T("Выберите вариант")],
];

function fieldWords(message) {
  const found = FIELD_WORDS.find(([pattern]) => pattern.test(message || ""));
  return found ? found[1] : T("Проверьте значение");
}

/** One open run: its card, rebuilt at each new step (typed values of a refused answer are kept). */
class RunCard {
  constructor(panel, run) {
    this.panel = panel;
    this.errors = {};
    this.el = h("section", { class: "panel script-run", "data-test": "script-run" });
    this.update(run);
  }

  get socket() {
    return this.panel.ctx.socket;
  }

  update(run, errors = {}) {
    const before = this.run;
    const sameStep = Boolean(before && before.step && run.step && before.step.id === run.step.id);
    const stepChanged = !sameStep || Boolean(before.transfer) !== Boolean(run.transfer);
    this.run = run;
    this.errors = errors;
    if (stepChanged || Object.keys(errors).length) this.render(sameStep ? this.typed() : {});
    else this.renderStatus();
    this.notify(run);
  }

  /** A notice of the PBX (the reply and the push both carry it): told once per step. */
  notify(run) {
    const key = run.notice ? `${run.notice}|${run.step ? run.step.id : ""}|${run.route.length}` : null;
    if (!key || key === this.told) return;
    this.told = key;
    if (run.notice === "transfer_answered") toast(T("{name} ответил(а): звонок передан", { name: this.lastTransfer || "" }));
    if (run.notice === "transfer_not_answered") toast(T("Сотрудник не ответил: оставьте напоминание"), "error");
    if (run.notice === "transfer_failed") toast(T("Перевод не удался: оставьте напоминание"), "error", run.notice_detail || "");
  }

  /** Whether the run's call is over (a run started by hand has no call: nothing is over). */
  callOver() {
    return Boolean(this.run.linkedid) && !this.run.call_active && this.run.status === "open";
  }

  renderStatus() {
    if (!this.over) return;
    const over = this.callOver();
    // The call just ended: the panel offers to finish the script or discard it with a reason.
    if (over && this.over.hidden && this.discardBox) this.discardBox.open = true;
    this.over.hidden = !over;
  }

  /** What is typed in the step's fields now (kept when the step is shown again, e.g. with a refusal's messages). */
  typed() {
    const out = {};
    for (const el of this.el.querySelectorAll("input[name], textarea[name], select[name]")) out[el.name] = el.value;
    return out;
  }

  /** Focus the step's first field, or its main button; after a refusal, the first field refused. Only once the card
   * is in the page (an element not in the document takes no focus). */
  focus() {
    if (!this.el.isConnected) return;
    const refused = Object.keys(this.errors).map((name) => this.el.querySelector(`[name="${CSS.escape(name)}"]`)).find(Boolean);
    const first = refused || this.el.querySelector("[data-autofocus]")
      || this.el.querySelector(".script-body input:not([type=hidden]), .script-body textarea, .script-body select");
    if (first) first.focus();
  }

  render(kept = {}) {
    const run = this.run;
    const step = run.step;
    this.over = h("div", { class: "script-over", "data-test": "script-call-over", hidden: true },
      T("Звонок завершён: закончите сценарий или отмените его"));
    const head = h("div", { class: "panel-head" },
      h("h2", {}, run.title),
      h("span", { class: "muted", "data-test": "script-channel" }, CHANNELS[run.channel] || run.channel),
      run.caller_display ? h("span", { class: "muted" }, run.caller_display) : null);
    const route = h("ol", { class: "script-route", "data-test": "script-route" }, run.route.map((t) => h("li", {}, t)));
    const body = h("div", { class: "script-body" }, step ? this.stepBody(step)
      : h("p", {}, run.status === "registered" ? T("Обращение зарегистрировано") : T("Сценарий закрыт")));
    const title = step ? h("h3", { "data-test": "script-step-title", "data-step": step.id }, step.title) : null;
    const say = step && step.text ? h("p", { class: "script-say", "data-test": "script-say" }, step.text) : null;
    for (const [name, value] of Object.entries(kept)) {
      const el = body.querySelector(`[name="${CSS.escape(name)}"]`);
      if (el && value) el.value = value;
    }
    // replaceChildren would write a null as the text «null»: only the parts this step has.
    this.el.replaceChildren(...[head, this.over, route, title, say, body, this.complaintButton(), this.footer()]
      .filter((part) => part));
    this.renderStatus();
    this.focus();
  }

  /** The «Жалоба» route: the complaint's registration form (complaints.js), the call's client filled in and what the
   * agent typed as the complaint's text; the script goes on to register the contact as before. */
  complaintButton() {
    const run = this.run;
    if (run.reason !== "complaint" || run.status !== "open" || !this.panel.ctx.complaints) return null;
    return h("div", { class: "script-complaint" }, h("button", { type: "button", class: "btn", "data-test": "script-complaint",
      onclick: () => this.panel.ctx.complaints.fromCall(run.linkedid ? { pbx: run.pbx, linkedid: run.linkedid } : null,
        { comment: (this.typed().what || "").trim() }) }, T("Оформить жалобу")));
  }

  footer() {
    const run = this.run;
    this.discardBox = null;
    if (run.status !== "open") return null;
    const reason = h("input", { type: "text", name: "reason", maxlength: 1000, placeholder: T("Причина отмены"),
      "data-test": "script-discard-reason", "aria-label": T("Причина отмены"), autocomplete: "off" });
    const discard = h("button", { type: "submit", class: "btn btn-small", "data-test": "script-discard" }, T("Отменить"));
    const problem = h("div", { class: "script-error", "data-test": "script-error", "data-field": "reason",
      hidden: !this.errors.reason }, this.errors.reason || "");
    const form = h("form", { class: "script-discard", onsubmit: (e) => {
      e.preventDefault();
      if (!reason.value.trim()) {
        problem.textContent = T("Укажите причину отмены");
        problem.hidden = false;
        reason.focus();
        return;
      }
      busy(discard, () => this.send("script.discard", { reason: reason.value.trim() }));
    } }, reason, discard);
    const back = run.can_go_back
      ? h("button", { type: "button", class: "btn btn-small", "data-test": "script-back",
        onclick: (e) => busy(e.currentTarget, () => this.send("script.back", {})) }, T("Назад"))
      : null;
    this.discardBox = h("details", { class: "script-discard-box", "data-test": "script-discard-box" },
      h("summary", {}, T("Отменить сценарий")), form, problem);
    if (this.errors.reason) this.discardBox.open = true;
    return h("div", { class: "script-footer" }, back, this.discardBox);
  }

  /** Send a request about this run; a refusal shows its messages, the run at its (unchanged) step. */
  async send(type, fields) {
    try {
      const data = await this.socket.request(type, { run: this.run.id, ...fields });
      if (data.refused) {
        const refused = data.refused;
        const errors = {};
        for (const [name, message] of Object.entries(refused.fields || {})) errors[name] = fieldWords(message);
        if (!Object.keys(errors).length) {
          const words = { no_way_back: T("Сюда нельзя вернуться"), finished: T("Сценарий уже закрыт") }[refused.code];
          toast(words || T("Проверьте значение"), "error", refused.message);
        }
        this.update(data.run, errors);
        return;
      }
      if (data.run) this.panel.show(data.run);
    } catch (err) {
      if (err && err.code === "conflict") toast(T("Сценарий изменился в другой вкладке: показан как есть"), "error");
      else errorToast(err);
      this.panel.load();
    }
  }

  answer(value, button) {
    return busy(button, () => this.send("script.answer", { step: this.run.step.id, answer: value }));
  }

  error(name) {
    const words = this.errors[name];
    return words ? h("div", { class: "script-error", "data-test": "script-error", "data-field": name }, words) : null;
  }

  /** A form: its inputs, Enter = submit. */
  form(children, submit, label = T("Далее"), { focusButton = false } = {}) {
    const button = h("button", { type: "submit", class: "btn btn-primary", "data-test": "script-next",
      "data-autofocus": focusButton || null }, label);
    return h("form", { class: "script-form", onsubmit: (e) => { e.preventDefault(); submit(button); } },
      children, button);
  }

  input(name, labelText, props = {}) {
    const el = h(props.multiline ? "textarea" : "input", { name, "data-test": `script-field-${name}`,
      "aria-label": labelText, autocomplete: "off", ...(props.multiline ? { rows: 3 } : { type: "text" }),
      placeholder: props.placeholder || null, value: props.value || "" });
    return { el, row: h("label", { class: "script-field" }, h("span", {}, labelText), el, this.error(name)) };
  }

  stepBody(step) {
    const kind = step.kind;
    if (kind === "choice") {
      return h("div", { class: "script-options" }, step.options.map((o, n) =>
        h("button", { type: "button", class: "btn", "data-test": "script-option", "data-value": o.value,
          "data-autofocus": n === 0 ? true : null, onclick: (e) => this.answer({ option: o.value }, e.currentTarget) },
        o.label)), this.error("option"));
    }
    if (kind === "fields") return this.fieldsBody(step);
    if (kind === "identify") return this.identifyBody(step);
    if (kind === "pick_earlier") return this.earlierBody(step);
    if (kind === "transfer") return this.transferBody(step);
    if (kind === "reminder") return this.reminderBody(step);
    if (kind === "register" || kind === "end") {
      const note = this.input("note", T("Комментарий"), { multiline: true });
      // The button is focused, not the note: Enter registers (a note is the exception, a click away).
      return this.form([note.row], (b) => this.answer(note.el.value.trim() ? { note: note.el.value.trim() } : {}, b),
        kind === "register" ? T("Зарегистрировать") : T("Завершить"), { focusButton: true });
    }
    return this.form([], (b) => this.answer({}, b));
  }

  fieldsBody(step) {
    const inputs = step.fields.map((f) => {
      if (f.type === "employee") {
        const el = h("select", { name: f.name, "data-test": `script-field-${f.name}`, "aria-label": f.label },
          h("option", { value: "" }, "—"), f.choices.map((e) => h("option", { value: e.id }, e.name)));
        return { spec: f, el, row: h("label", { class: "script-field" }, h("span", {}, f.label), el, this.error(f.name)) };
      }
      return { spec: f, ...this.input(f.name, f.label, { multiline: f.multiline }) };
    });
    return this.form(inputs.map((i) => i.row), (button) => {
      const value = {};
      for (const { spec, el } of inputs) {
        const text = el.value.trim();
        value[spec.name] = text === "" ? null : text;
      }
      this.answer(value, button);
    });
  }

  identifyBody(step) {
    const run = this.run;
    const parts = [];
    if (run.contact_id) {
      parts.push(h("button", { type: "button", class: "btn", "data-test": "script-card-client", "data-autofocus": true,
        onclick: (e) => this.answer({ contact_id: run.contact_id, found_by: "number" }, e.currentTarget) },
      T("Клиент из карточки")));
    }
    // A new client: open at once when the card found nobody by the number (the usual case for a new client: their
    // make is typed straight away), one click away otherwise. The required fields first: make, then plate.
    const fields = [];
    if (step.name_required || step.client_kind !== "private") fields.push(["name", T("Имя или название")]);
    if (step.car !== "none") fields.push(["make", T("Марка")], ["plate", T("Госномер")], ["model", T("Модель")]);
    fields.push(["phone", T("Телефон"), run.caller_display ? T("Номер звонящего: {number}", { number: run.caller_display }) : ""]);
    const inputs = fields.map(([name, text, hint]) => ({ name, ...this.input(name, text, { placeholder: hint }) }));
    const opened = !run.contact_id || Object.keys(this.errors).length > 0;
    const newForm = h("div", { class: "script-new", "data-test": "script-new-form", hidden: !opened },
      this.form(inputs.map((i) => i.row), (button) => {
        const value = {};
        for (const { name, el } of inputs) if (el.value.trim()) value[name] = el.value.trim();
        this.answer({ new: value }, button);
      }));
    const newButton = h("button", { type: "button", class: "btn", "data-test": "script-new-client", hidden: opened },
      T("Новый клиент"));
    newButton.addEventListener("click", () => {
      newForm.hidden = false;
      newButton.hidden = true;
      inputs[0].el.focus();
    });
    if (opened) inputs[0].el.dataset.autofocus = "";
    // Or a client the directory knows under another number: the directory's search (GET /api/contacts, as card.js).
    const q = h("input", { type: "search", placeholder: T("Фамилия, телефон или госномер"), "data-test": "script-search",
      "aria-label": T("Фамилия, телефон или госномер"), maxlength: 100, autocomplete: "off" });
    const found = h("ul", { class: "script-found", "data-test": "script-found" });
    const searchButton = h("button", { type: "submit", class: "btn" }, T("Найти"));
    const search = h("form", { class: "script-search", role: "search", onsubmit: async (e) => {
      e.preventDefault();
      if (!q.value.trim()) return;
      const data = await busy(searchButton, () => api(`/api/contacts${query({ q: q.value.trim(), limit: 10 })}`));
      if (!data) return;
      const contacts = data.contacts || [];
      found.replaceChildren(...(contacts.length ? contacts.map((c) => h("li", {},
        h("button", { type: "button", class: "btn btn-small", "data-test": "script-found-client",
          onclick: (ev) => this.answer({ contact_id: c.id, vehicle_id: (c.vehicles && c.vehicles[0] && c.vehicles[0].id) || null,
            found_by: "search" }, ev.currentTarget) },
        c.name, c.vehicles && c.vehicles.length ? ` — ${c.vehicles.map((v) => [v.make, v.plate].filter(Boolean).join(" ")).join(", ")}` : "")))
        : [h("li", { class: "muted" }, T("Никого не нашли"))]));
    } }, q, searchButton);
    parts.push(newButton, newForm, search, found);
    return h("div", { class: "script-identify" }, parts);
  }

  earlierBody(step) {
    const run = this.run;
    const call = run.linkedid ? this.panel.ctx.store.calls.get(callKey({ linkedid: run.linkedid, pbx: run.pbx })) : null;
    const last = (call && call.card && call.card.last_calls) || [];
    const items = last.map((c, n) => h("button", { type: "button", class: "btn btn-small", "data-test": "script-earlier",
      "data-autofocus": n === 0 ? true : null, onclick: (e) => this.answer({ call: c.linkedid }, e.currentTarget) },
    new Date(c.started_at).toLocaleString()));
    return h("div", { class: "script-options" }, items.length ? items : h("p", { class: "muted" }, T("Нет прошлых звонков")),
      step.required ? null : h("button", { type: "button", class: "btn", "data-test": "script-none",
        onclick: (e) => this.answer({ none: true }, e.currentTarget) }, T("Ни один из них")), this.error("call"));
  }

  transferBody(step) {
    const run = this.run;
    if (run.transfer) {
      this.lastTransfer = run.transfer.employee.name;
      return h("p", { class: "script-pending", "data-test": "script-transfer-pending" },
        T("Переводим на {name}…", { name: run.transfer.employee.name }));
    }
    const people = step.employees.length ? step.employees : step.employee ? [step.employee] : [];
    return h("div", { class: "script-options" }, people.map((e, n) => h("button", { type: "button", class: "btn",
      "data-test": "script-employee", "data-value": e.id, "data-autofocus": n === 0 ? true : null,
      onclick: (ev) => {
        this.lastTransfer = e.name;
        this.answer({ employee: e.id }, ev.currentTarget);
      } }, e.name)), this.error("employee"));
  }

  reminderBody(step) {
    const due = this.input("due", T("Когда перезвонить"));
    const presets = [["+1h", T("Через час")], ["+2h", T("Через 2 часа")], ["+1d", T("Завтра")]].map(([value, text]) =>
      h("button", { type: "button", class: "btn btn-small", "data-test": "script-due-preset", "data-value": value,
        onclick: () => {
          due.el.value = value;
          due.el.focus();
        } }, text));
    const rows = [h("div", { class: "script-presets" }, presets), due.row];
    let who = null;
    if (step.employees.length) {
      who = h("select", { name: "employee", "data-test": "script-field-employee", "aria-label": T("Кто перезвонит") },
        step.employees.map((e) => h("option", { value: e.id, selected: step.employee && step.employee.id === e.id }, e.name)));
      rows.push(h("label", { class: "script-field" }, h("span", {}, T("Кто перезвонит")), who, this.error("employee")));
    } else if (step.employee) { // the script names who calls back (the master the call was passed to)
      rows.push(h("div", { class: "script-field" }, h("span", {}, T("Кто перезвонит")),
        h("strong", { "data-test": "script-reminder-employee", "data-value": step.employee.id }, step.employee.name)));
    }
    const number = this.input("number", T("Номер"), { value: step.number || "" });
    const note = this.input("note", T("Комментарий"), { multiline: true });
    rows.push(number.row, note.row);
    return this.form(rows, (button) => {
      const value = { due: due.el.value.trim() };
      if (who && who.value) value.employee = who.value;
      if (number.el.value.trim() && number.el.value.trim() !== step.number) value.number = number.el.value.trim();
      if (note.el.value.trim()) value.note = note.el.value.trim();
      this.answer(value, button);
    }, T("Создать"));
  }
}

/** The agent's script area: their open runs, and starting one by hand. */
export class ScriptPanel {
  constructor(ctx) {
    this.ctx = ctx;
    this.cards = new Map();
    this.list = h("div", { class: "script-runs", "data-test": "script-runs" });
    this.channel = h("select", { "data-test": "script-start-channel", "aria-label": T("Начать сценарий") },
      ["visit", "internet", "phone"].map((c) => h("option", { value: c }, CHANNELS[c])));
    this.startButton = h("button", { type: "button", class: "btn btn-small", "data-test": "script-start",
      onclick: (e) => busy(e.currentTarget, async () => {
        const data = await this.ctx.socket.request("script.start", { channel: this.channel.value });
        if (data.run) this.show(data.run);
      }) }, T("Начать сценарий"));
    this.starter = h("div", { class: "script-starter", hidden: true }, this.channel, this.startButton);
    this.el = h("div", { class: "script-area", "data-test": "script-area" }, this.list, this.starter);
    this.pushed = new PushedWhileLoading(); // the runs pushed while load() waits for the list
  }

  onMessage(msg) {
    if (msg.type === "hello") this.load();
    if (msg.type === "script.run") {
      const me = this.ctx.store.me;
      if (me && msg.run.agent === me.extension) {
        this.pushed.touch(msg.run.id);
        this.show(msg.run);
      }
    }
  }

  /** Every open run of the agent, from the server (after a connect: a reload, a second tab, a reconnect). A run
   * launched or moved on while the server reads the list comes as a script.run before the list: the list does not
   * take it away nor set it back. */
  async load() {
    const pushed = this.pushed.begin();
    let data;
    try {
      data = await this.ctx.socket.request("script.runs");
    } catch {
      this.starter.hidden = true; // no scripts here (or not an agent): nothing to show
      return;
    } finally {
      this.pushed.end(pushed);
    }
    this.starter.hidden = !(data.scripts && data.scripts.length);
    const open = new Set();
    for (const run of data.runs || []) {
      open.add(run.id);
      if (!pushed.has(run.id)) this.show(run);
    }
    for (const [id, card] of this.cards) {
      if (!open.has(id) && !pushed.has(id)) {
        card.el.remove();
        this.cards.delete(id);
      }
    }
  }

  show(run) {
    let card = this.cards.get(run.id);
    if (!card) {
      if (run.status !== "open") return;
      card = new RunCard(this, run);
      this.cards.set(run.id, card);
      this.list.prepend(card.el);
      card.focus(); // in the page now: its first field takes the focus
    } else {
      card.update(run);
    }
    if (run.status !== "open") {
      toast(run.status === "registered" ? T("Обращение зарегистрировано") : T("Сценарий закрыт"));
      this.cards.delete(run.id);
      setTimeout(() => card.el.remove(), 1500);
    }
  }
}
