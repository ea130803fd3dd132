// Call-back reminders (docs/contact-script.md#reminders): the list of one's own reminders (an agent's view, and the
// whole view of an employee, a master who logs in only for these), and the admins' "overdue reminders".
//
// Each row: when it is due, the client (their card as it was when the reminder was made), the number, the note; a
// call button (click-to-call from one's own phone: the originate request) and a comment to close it with (done, or
// cancelled). A reminder whose time came is highlighted, with one ring of alert.wav when reminder.due arrives (the
// browser plays it only after a first click on the page, as alerts.js explains). GET /api/reminders at start and
// after a reconnect; reminder.new / due / escalated / closed keep the list.

import { translations } from "./i18n.js";
import { api, query } from "./net.js";
import { PushedWhileLoading, busy, clear, errorText, fmtShortDateTime, h, manyPbxs, pbxName, setText, toast } from "./util.js";

const T = translations({
  "Напоминания": "Reminders",
  "Просроченные напоминания": "Overdue reminders",
  "Напоминаний нет": "No reminders",
  "Просроченных напоминаний нет": "No overdue reminders",
  "Перезвонить к {when}": "Call back by {when}",
  "пора перезвонить": "time to call back",
  "просрочено": "overdue",
  "Позвонить": "Call",
  "Закрыть": "Close",
  "Отменить": "Cancel",
  "комментарий": "comment",
  "Что сделано: комментарий": "What was done: a comment",
  "Звоним на {number}: сначала зазвонит ваш телефон": "Calling {number}: your phone rings first",
  "Напоминание закрыто": "Reminder closed",
  "Напоминание отменено": "Reminder cancelled",
  "Напоминание уже закрыто": "This reminder is closed already",
  "Новое напоминание: перезвонить {who}": "New reminder: call {who} back",
  "Пора перезвонить: {who}": "Time to call back: {who}",
  "Кому": "Assignee",
  "Клиент": "Client",
  "Заметка": "Note",
  "загрузка…": "loading…",
  "номер не указан": "no number",
});

const SOUND = "/static/alert.wav";
/** How often due times are looked at again (a reminder's time may come between two messages). */
const RECHECK_MS = 10_000;

/** A server time (ISO) as this browser's clock reads it (the server's clock may be a little off ours). */
function localMs(store, iso) {
  const at = Date.parse(iso || "");
  return Number.isNaN(at) ? NaN : at - (store.serverOffsetMs || 0);
}

export class RemindersPanel {
  /** ``mode``: "mine" (one's own, to call back) or "overdue" (an admin's: the escalated ones of every employee). */
  constructor(ctx, { mode = "mine" } = {}) {
    this.ctx = ctx;
    this.mode = mode;
    this.reminders = new Map(); // id -> ReminderInfo
    this.comments = new Map(); // id -> the comment being typed (kept across renders)
    this.rings = new Set(); // ids whose due ring was played
    this.status = h("span", { class: "muted" });
    this.count = h("span", { class: "count count-alert", "data-test": "reminders-count" });
    this.list = h("ul", { class: "reminder-list", "data-test": "reminders-list" });
    this.sound = h("audio", { src: SOUND, preload: "auto", "data-test": "reminder-sound", "data-plays": "0" });
    const title = mode === "overdue" ? T("Просроченные напоминания") : T("Напоминания");
    this.el = h("section", { class: `panel reminders reminders-${mode}`, "data-test": `reminders-${mode}` },
      h("div", { class: "panel-head" }, h("h2", {}, title), this.count, this.status), this.list, this.sound);
    this.timer = setInterval(() => this.render(), RECHECK_MS);
    this.pushed = new PushedWhileLoading(); // the reminders pushed while load() reads the list
  }

  async load() {
    setText(this.status, T("загрузка…"));
    const pushed = this.pushed.begin();
    try {
      const data = await api(`/api/reminders${query({ view: this.mode })}`);
      const fresh = new Map();
      for (const r of data.reminders || []) fresh.set(r.id, r);
      for (const [id, r] of this.reminders) if (r.fromEvent && r.status !== "open") fresh.delete(id);
      for (const id of pushed) { // a push that came while the list was read is newer than the list
        if (this.reminders.has(id)) fresh.set(id, this.reminders.get(id));
        else fresh.delete(id);
      }
      this.reminders = fresh;
      setText(this.status, "");
    } catch (err) {
      setText(this.status, errorText(err));
    } finally {
      this.pushed.end(pushed);
    }
    this.render();
  }

  onMessage(msg) {
    if ((msg.type === "hello" && this.ctx.reconnected) || (msg.type === "state" && this.ctx.reconnected)) {
      this.load(); // what changed while the socket was down
      return;
    }
    if (!msg.type || !msg.type.startsWith("reminder.") || !msg.reminder) return;
    const r = { ...msg.reminder, fromEvent: true };
    this.pushed.touch(r.id);
    if (msg.type === "reminder.closed" || r.status !== "open") {
      this.reminders.delete(r.id);
    } else if (this.mode === "overdue") {
      if (r.escalated_at) this.reminders.set(r.id, r);
      if (msg.type === "reminder.escalated") this.ring(r);
    } else if (this.mine(r)) {
      const was = this.reminders.get(r.id);
      this.reminders.set(r.id, { ...was, ...r, due: r.due || Boolean(was && was.due) });
      if (msg.type === "reminder.new") toast(T("Новое напоминание: перезвонить {who}", { who: this.who(r) }));
      if (msg.type === "reminder.due") {
        toast(T("Пора перезвонить: {who}", { who: this.who(r) }));
        this.ring(r);
      }
    }
    this.render();
  }

  /** One's own: the panel gets the reminders of its extension (and, as an admin, everyone's: not "mine"). */
  mine(r) {
    const me = this.ctx.store.me || {};
    return (r.user && me.name && r.user.toLowerCase() === me.name.toLowerCase()) || (me.extension && r.extension === me.extension);
  }

  who(r) {
    return r.client_name || (r.card && r.card.name) || r.number_display || r.number || T("номер не указан");
  }

  /** One ring per reminder (sparingly: a list of ten due at once rings once each, never again on a re-render). */
  ring(r) {
    if (this.rings.has(r.id)) return;
    this.rings.add(r.id);
    const audio = this.sound;
    audio.currentTime = 0;
    const started = audio.play();
    if (started && started.then) {
      started.then(() => { audio.dataset.plays = String(Number(audio.dataset.plays || 0) + 1); }, () => {});
    }
  }

  isDue(r) {
    const at = localMs(this.ctx.store, r.due_at);
    return Boolean(r.due) || (!Number.isNaN(at) && at <= Date.now());
  }

  call(r, button) {
    busy(button, async () => {
      await this.ctx.socket.request("originate", { number: r.number, pbx: r.pbx });
      toast(T("Звоним на {number}: сначала зазвонит ваш телефон", { number: r.number_display || r.number }));
    });
  }

  close(r, button, cancel) {
    const comment = (this.comments.get(r.id) || "").trim();
    busy(button, async () => {
      try {
        await this.ctx.socket.request("reminder.close", { reminder_id: r.id, comment: comment || null, cancel });
      } catch (err) {
        if (err.code !== "conflict" && err.code !== "not_found") throw err;
        toast(T("Напоминание уже закрыто"));
      }
      this.reminders.delete(r.id);
      this.comments.delete(r.id);
      toast(cancel ? T("Напоминание отменено") : T("Напоминание закрыто"));
      this.render();
    });
  }

  row(r) {
    const due = this.isDue(r);
    const card = r.card || {};
    const comment = h("input", {
      type: "text", class: "reminder-comment", "data-test": "reminder-comment", placeholder: T("комментарий"),
      "aria-label": T("Что сделано: комментарий"), maxlength: 1000, value: this.comments.get(r.id) || "",
      oninput: (e) => this.comments.set(r.id, e.currentTarget.value),
    });
    const closeButton = h("button", { type: "button", class: "btn btn-small btn-primary", "data-test": "reminder-close",
      onclick: (e) => this.close(r, e.currentTarget, false) }, T("Закрыть"));
    const cancelButton = h("button", { type: "button", class: "btn btn-small btn-ghost", "data-test": "reminder-cancel",
      onclick: (e) => this.close(r, e.currentTarget, true) }, T("Отменить"));
    const callButton = this.mode === "mine"
      ? h("button", { type: "button", class: "btn btn-small btn-call", "data-test": "reminder-call",
        onclick: (e) => this.call(r, e.currentTarget) }, T("Позвонить"))
      : null;
    const cars = (card.cars || []).join(", ");
    return h("li", {
      class: `reminder${due ? " reminder-due" : ""}${r.escalated_at ? " reminder-escalated" : ""}`,
      "data-test": "reminder", "data-id": r.id, "data-due": String(due),
    },
    h("div", { class: "reminder-when", "data-test": "reminder-due-at" },
      T("Перезвонить к {when}", { when: fmtShortDateTime(r.due_at) }),
      due ? h("span", { class: "chip chip-small chip-due", "data-test": "reminder-due-mark" },
        r.escalated_at ? T("просрочено") : T("пора перезвонить")) : null,
      manyPbxs() ? h("span", { class: "chip chip-small pbx" }, pbxName(r.pbx)) : null),
    this.mode === "overdue"
      ? h("div", { class: "reminder-who", "data-test": "reminder-employee" }, `${T("Кому")}: `,
        r.employee_name + (r.extension ? ` (${r.extension})` : ""))
      : null,
    h("div", { class: "reminder-client", "data-test": "reminder-client" }, `${T("Клиент")}: `,
      h("strong", {}, card.name || r.client_name || "—"), cars ? h("span", { class: "sub" }, ` · ${cars}`) : null),
    h("div", { class: "reminder-number", "data-test": "reminder-number" }, r.number_display || r.number),
    r.note ? h("div", { class: "reminder-note", "data-test": "reminder-note" }, `${T("Заметка")}: `, r.note) : null,
    card.note ? h("div", { class: "sub" }, card.note) : null,
    h("div", { class: "reminder-actions" }, callButton, comment, closeButton, cancelButton));
  }

  render() {
    const shown = [...this.reminders.values()].filter((r) => r.status === "open")
      .sort((a, b) => (a.due_at < b.due_at ? -1 : a.due_at > b.due_at ? 1 : a.id - b.id));
    const focused = document.activeElement;
    const typing = focused && focused.tagName === "INPUT" && focused.closest("[data-test=reminder]");
    if (typing && shown.some((r) => r.id === Number(typing.dataset.id))) return; // never wipe a comment being typed
    setText(this.count, shown.length ? String(shown.length) : "");
    this.el.dataset.count = String(shown.length);
    clear(this.list);
    if (!shown.length) {
      this.list.append(h("li", { class: "reminder-empty muted" },
        this.mode === "overdue" ? T("Просроченных напоминаний нет") : T("Напоминаний нет")));
    }
    for (const r of shown) this.list.append(this.row(r));
  }
}

/** The whole view of an employee (a master): their reminders, nothing else. */
export class EmployeeView {
  constructor(ctx) {
    this.ctx = ctx;
    this.reminders = new RemindersPanel(ctx);
    this.el = h("div", { class: "employee-layout", "data-test": "employee-view" }, this.reminders.el);
    this.reminders.load();
  }

  onMessage(msg) {
    this.reminders.onMessage(msg);
  }

  render() {}
}
