// The agent's view: own state and pause, the incoming-call pop with call control, click-to-call, recent calls.

import { Directory, NewContactForm, cardContent } from "./card.js";
import { markUncertain, uncertainMark } from "./health.js";
import { translations } from "./i18n.js";
import { RecentCalls } from "./journal.js";
import { AgentLive } from "./live.js";
import { RingAlert } from "./notify.js";
import { RemindersPanel } from "./reminders.js";
import { ScriptPanel } from "./script.js";
import { busy, callKey, errorText, errorToast, fmtDuration, h, label, manyPbxs, pbxName, setText, shownNumber, toast } from "./util.js";

const T = translations({
  "Пауза": "Pause",
  "Снять паузу": "End pause",
  "Вы на паузе: {reason}": "You are paused: {reason}",
  "Пауза снята": "Pause ended",
  "Не удалось поставить паузу: {error}": "Could not pause: {error}",
  "Не удалось снять паузу: {error}": "Could not end the pause: {error}",
  "доб. или номер": "ext. or number",
  "куда перевести": "transfer to",
  "вид перевода": "kind of transfer",
  "слепой": "blind",
  "с консультацией": "attended",
  "Перевести": "Transfer",
  "Завершить звонок": "Hang up",
  "АТС": "PBX",
  "Набран": "Dialled",
  "Очередь": "Queue",
  "Перевести звонок": "Transfer the call",
  "Звонит ваш телефон: исходящий": "Your phone is ringing: outbound call",
  "Внутренний звонок": "Internal call",
  "Входящий звонок": "Incoming call",
  "номер скрыт": "number withheld",
  "исходящий": "outbound",
  "Переведён на {target}": "Transferred to {target}",
  "Укажите, куда перевести: добавочный или номер, только цифры": "Say where to transfer: an extension or a number, digits only",
  "Звонок переводится на {target}": "The call is being transferred to {target}",
  "Консультация с {target}: положите трубку, чтобы завершить перевод": "Consulting {target}: hang up to complete the transfer",
  "Звонок переведён на {target}": "The call was transferred to {target}",
  "причина паузы": "pause reason",
  "Статус: ": "Status: ",
  "Нет активных звонков": "No calls now",
  "номер для звонка": "number to call",
  "Позвонить": "Call",
  "Текущий звонок": "Current call",
  "звонок": "call",
  "Введите номер: цифры, пробелы, скобки, дефис, можно с + в начале": "Enter a number: digits, spaces, brackets, hyphens, an optional leading +",
  "Звоним на {number}: сначала зазвонит ваш телефон": "Calling {number}: your phone rings first",
  "Жалоба": "Complaint",
  "Зарегистрировать жалобу по этому звонку": "Register a complaint about this call",
});

const NUMBER = /^\+?[0-9 ()\-]+$/;
const TARGET = /^\+?[0-9]+$/;

/** The party the agent is talking to: the caller of inbound/internal calls, the dialled number of outbound ones
 * (``number`` as people read it, ``raw`` as the PBX gave it). */
export function otherParty(call) {
  if (call.direction === "outbound") return { number: shownNumber(call, "called"), raw: call.called, name: null };
  return { number: shownNumber(call, "caller"), raw: call.caller, name: call.caller_name };
}

/** The pop: one card per call on the agent's phone. Built once per call and updated in place, so that a
 * transfer target being typed is not wiped by the next event. */
class Pop {
  constructor(call, ctx) {
    this.ctx = ctx;
    this.linkedid = call.linkedid;
    this.pbx = call.pbx; // requests name the call's PBX: a linkedid is unique only within its PBX
    const r = (this.refs = {});
    r.state = h("span", { class: "pop-state", "data-test": "call-state" });
    r.uncertain = uncertainMark("pop-uncertain"); // its PBX is lost: the call may have ended (health.js)
    r.timer = h("span", { class: "pop-timer", "data-test": "call-timer" });
    r.number = h("div", { class: "pop-number", "data-test": "pop-caller" });
    r.name = h("div", { class: "pop-name", "data-test": "pop-caller-name" });
    r.called = h("dd", { "data-test": "pop-called" });
    r.queue = h("dd", { "data-test": "pop-queue" });
    r.cardBody = h("div", { class: "pop-card-body" });
    this.newContact = new NewContactForm(call, ctx.cardChanged);
    this.cardKey = null;
    r.card = h("div", { class: "pop-card", "data-test": "pop-card" }, r.cardBody, this.newContact.el);
    r.note = h("div", { class: "pop-note", "data-test": "pop-note" });
    r.target = h("input", {
      type: "text", inputmode: "tel", placeholder: T("доб. или номер"), "data-test": "transfer-target",
      id: `transfer-${call.key}`,
      "aria-label": T("куда перевести"), autocomplete: "off", size: 12,
    });
    r.mode = h("select", { "data-test": "transfer-mode", "aria-label": T("вид перевода") },
      h("option", { value: "blind" }, T("слепой")),
      h("option", { value: "attended" }, T("с консультацией")));
    r.transfer = h("button", { type: "submit", class: "btn btn-primary", "data-test": "transfer-submit" }, T("Перевести"));
    r.hangup = h("button", { type: "button", class: "btn btn-danger btn-hangup", "data-test": "hangup", onclick: () => this.hangup() },
      T("Завершить звонок"));
    // One click: the complaint form with the caller, their name, car and plate filled in (complaints.js).
    r.complaint = h("button", { type: "button", class: "btn", "data-test": "pop-complaint",
      title: T("Зарегистрировать жалобу по этому звонку"),
      onclick: () => ctx.complaints.fromCall({ pbx: this.pbx, linkedid: this.linkedid }) }, T("Жалоба"));
    this.el = h("article", { class: "pop", "data-test": "call-pop", "data-linkedid": call.linkedid, "data-pbx": call.pbx },
      h("div", { class: "pop-top" }, r.state, r.timer, r.uncertain,
        manyPbxs() ? h("span", { class: "chip chip-small pbx", "data-test": "pop-pbx", title: T("АТС") }, pbxName(call.pbx)) : null),
      r.number, r.name,
      h("dl", { class: "pop-meta" }, h("dt", {}, T("Набран")), r.called, r.queueTitle = h("dt", {}, T("Очередь")), r.queue),
      r.card, r.note,
      h("div", { class: "pop-actions" },
        h("form", { class: "transfer", "data-test": "transfer-form", onsubmit: (e) => { e.preventDefault(); this.transfer(); } },
          h("label", { class: "transfer-label", for: `transfer-${call.key}` }, T("Перевести звонок")),
          h("div", { class: "transfer-row" }, r.target, r.mode, r.transfer)),
        r.complaint, r.hangup));
  }

  update(call, leg) {
    const r = this.refs;
    const state = leg ? leg.state : call.state;
    this.el.dataset.state = state;
    markUncertain(this.el, r.uncertain, this.ctx.store.uncertain(call));
    this.el.classList.toggle("pop-ringing", state === "ringing");
    this.el.classList.toggle("pop-talking", state === "talking");
    const outbound = call.direction === "outbound";
    setText(r.state, state === "ringing"
      ? (outbound ? T("Звонит ваш телефон: исходящий") : call.direction === "internal" ? T("Внутренний звонок") : T("Входящий звонок"))
      : label("callState", state));
    const since = state === "talking" ? (leg && leg.answeredMs) || call.answeredMs || call.startedMs : call.startedMs;
    r.timer.dataset.since = String(since);
    setText(r.timer, fmtDuration((Date.now() - since) / 1000));
    const party = otherParty(call);
    setText(r.number, party.number || T("номер скрыт"));
    setText(r.name, party.name || "");
    r.name.hidden = !party.name;
    setText(r.called, outbound ? T("исходящий") : shownNumber(call, "called") || "—");
    setText(r.queue, call.queue || "");
    r.queue.hidden = r.queueTitle.hidden = !call.queue;
    // The card: what the directory knows about the caller; rebuilt only when it changes.
    const card = call.card || null;
    const key = JSON.stringify(card);
    if (key !== this.cardKey) {
      this.cardKey = key;
      r.cardBody.replaceChildren(...cardContent(card, { agentName: (ext) => (this.ctx.store.agents.get(`${this.pbx}|${ext}`) || {}).name }));
    }
    this.newContact.update(card, outbound ? null : party.raw);
    setText(r.note, call.transferred_to ? T("Переведён на {target}", { target: call.transferred_to }) : "");
    r.note.hidden = !call.transferred_to;
  }

  async transfer() {
    const target = this.refs.target.value.trim();
    if (!TARGET.test(target)) {
      toast(T("Укажите, куда перевести: добавочный или номер, только цифры"), "error");
      this.refs.target.focus();
      return;
    }
    const mode = this.refs.mode.value;
    await busy(this.refs.transfer, async () => {
      await this.ctx.socket.request("transfer", { linkedid: this.linkedid, pbx: this.pbx, target, mode });
      toast(mode === "blind" ? T("Звонок переводится на {target}", { target })
        : T("Консультация с {target}: положите трубку, чтобы завершить перевод", { target }));
    });
  }

  async hangup() {
    await busy(this.refs.hangup, () => this.ctx.socket.request("hangup", { linkedid: this.linkedid, pbx: this.pbx }));
  }
}

export class AgentView {
  constructor(ctx) {
    this.ctx = ctx;
    this.pops = new Map();
    this.recent = new RecentCalls();
    // A call's card changed from here (attach, new client): show it now, call.card will say the same.
    ctx.cardChanged = (key, card) => {
      if (card && this.ctx.store.setCard(key, card)) this.render();
    };
    this.directory = new Directory(ctx.cardChanged);

    this.stateBadge = h("span", { class: "badge", "data-test": "my-state" }, "—");
    this.pauseReason = h("select", { "data-test": "pause-reason", "aria-label": T("причина паузы") },
      ["break", "lunch", "training", "other"].map((v) => h("option", { value: v }, label("pauseReason", v))));
    this.pauseButton = h("button", { type: "button", class: "btn", "data-test": "pause-toggle", onclick: () => this.togglePause() },
      T("Пауза"));
    // A pause (or its end) the PBX accepted ({paused, reason}), shown until the PBX's next agent.state about the
    // agent: a real PBX sends its QueueMemberPause at once, and from then on the PBX's word is what the panel shows.
    this.pauseWish = null;
    ctx.headerSlot.append(h("div", { class: "agent-status" }, T("Статус: "), this.stateBadge, this.pauseReason, this.pauseButton));
    // A notification and a ring while the panel is in the background (notify.js).
    this.ringAlert = new RingAlert(otherParty);
    ctx.headerSlot.append(this.ringAlert.el);

    this.popArea = h("div", { class: "pop-area", "data-test": "pop-area" });
    this.idle = h("div", { class: "pop-idle", "data-test": "pop-idle" }, T("Нет активных звонков"));
    this.live = new AgentLive(ctx); // the call's transcript as it goes and «Это …?» in the pop (live.js)
    this.dialInput = h("input", {
      type: "tel", placeholder: "+7 916 123-45-67", "data-test": "dial-number", "aria-label": T("номер для звонка"),
      autocomplete: "off",
    });
    this.dialButton = h("button", { type: "submit", class: "btn btn-primary", "data-test": "dial-submit" }, T("Позвонить"));
    const dial = h("section", { class: "panel" },
      h("div", { class: "panel-head" }, h("h2", {}, T("Позвонить"))),
      h("form", { class: "dial", "data-test": "dial-form", onsubmit: (e) => { e.preventDefault(); this.dial(); } },
        this.dialInput, this.dialButton));

    this.script = new ScriptPanel(ctx); // the contact script beside the caller card (script.js)
    this.el = h("div", { class: "agent-layout" },
      h("div", { class: "agent-main" }, h("section", { class: "panel" },
        h("div", { class: "panel-head" }, h("h2", {}, T("Текущий звонок"))), this.popArea, this.idle, this.live.lastEl),
      this.directory.el, dial),
      h("div", { class: "agent-side" }, this.script.el, this.recent.el)); // the script beside the pop's card
    this.recent.load();
    this.reminders = new RemindersPanel(ctx); // the agent's own call-back reminders (reminders.js)
    this.script.el.after(this.reminders.el);
    this.reminders.load();
  }

  onMessage(msg) {
    this.script.onMessage(msg);
    this.live.onMessage(msg);
    this.reminders.onMessage(msg);
    if (msg.type === "call.ended") this.recent.refreshSoon();
    const me = this.ctx.store.me;
    if (msg.type === "agent.state" && me && msg.extension === me.extension) this.pauseWish = null;
    if (msg.type === "call.transferred") {
      const call = this.ctx.store.calls.get(callKey(msg));
      if (call && call.agents.has(this.ctx.store.me.extension)) toast(T("Звонок переведён на {target}", { target: msg.transferred_to }));
    }
    if ((msg.type === "state" && this.ctx.reconnected) || msg.type === "hello") this.recent.refreshSoon();
  }

  render() {
    const { store } = this.ctx;
    const ext = store.me.extension;
    const mine = store.myCalls();
    const seen = new Set();
    for (const call of mine) {
      seen.add(call.key);
      let pop = this.pops.get(call.key);
      if (!pop) {
        pop = new Pop(call, this.ctx);
        this.pops.set(call.key, pop);
        this.popArea.prepend(pop.el);
        this.live.popShown(pop, call);
      }
      pop.update(call, call.agents.get(ext));
    }
    for (const [id, pop] of this.pops) {
      if (!seen.has(id)) {
        pop.el.remove();
        this.pops.delete(id);
        this.live.popGone(id);
      }
    }
    this.idle.hidden = mine.length > 0;
    this.directory.setCall(mine[0]);
    const ringing = mine.find((c) => (c.agents.get(ext) || {}).state === "ringing");
    this.ringAlert.update(mine.filter((c) => (c.agents.get(ext) || {}).state === "ringing"));
    document.title = ringing ? `☎ ${otherParty(ringing).number || T("звонок")} — CTI Companion` : "CTI Companion";

    const { state, paused, reason } = this.shownPause();
    setText(this.stateBadge, paused && reason
      ? `${label("agentState", state)} (${label("pauseReason", reason)})`
      : label("agentState", state));
    this.stateBadge.className = `badge agent-${state}`;
    this.stateBadge.dataset.state = state;
    setText(this.pauseButton, paused ? T("Снять паузу") : T("Пауза"));
    this.pauseButton.dataset.paused = String(paused);
    this.pauseReason.hidden = paused;
  }

  /** The agent's state as shown: the PBX's, or the pause the PBX just accepted while its event is on the way. */
  shownPause() {
    const me = this.ctx.store.myAgent();
    const wish = this.pauseWish;
    if (wish && !(me && Boolean(me.paused) === wish.paused)) {
      if (wish.paused) return { state: "paused", paused: true, reason: wish.reason };
      const state = me && me.state !== "paused" ? me.state : "idle";
      return { state, paused: false, reason: null };
    }
    return { state: me ? me.state : "unknown", paused: Boolean(me && me.paused), reason: me ? me.paused_reason : null };
  }

  async togglePause() {
    const paused = this.shownPause().paused;
    const reason = this.pauseReason.value;
    this.pauseButton.disabled = true;
    try {
      if (paused) await this.ctx.socket.request("queue.unpause");
      else await this.ctx.socket.request("queue.pause", { reason });
      this.pauseWish = { paused: !paused, reason: paused ? null : reason };
      toast(paused ? T("Пауза снята") : T("Вы на паузе: {reason}", { reason: label("pauseReason", reason) }));
    } catch (err) {
      const error = errorText(err);
      errorToast(err, paused ? T("Не удалось снять паузу: {error}", { error }) : T("Не удалось поставить паузу: {error}", { error }));
    } finally {
      this.pauseButton.disabled = false;
    }
    this.render();
  }

  async dial() {
    const number = this.dialInput.value.trim();
    if (!NUMBER.test(number)) {
      toast(T("Введите номер: цифры, пробелы, скобки, дефис, можно с + в начале"), "error");
      this.dialInput.focus();
      return;
    }
    const done = await busy(this.dialButton, async () => {
      await this.ctx.socket.request("originate", { number });
      return true;
    });
    if (done) {
      toast(T("Звоним на {number}: сначала зазвонит ваш телефон", { number }));
      this.dialInput.value = "";
    }
  }
}
