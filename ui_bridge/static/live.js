// Live audio in the panel (issue 17, docs/panel.md#live-transcript): a tapped call's words as they are said, the
// «Это …?» offer of who is calling from what was heard, and the supervisor's live keyword flags with «Слушать».
//
// The daemon sends, per call (its PBX and linkedid) and per lane (the agent's voice, the customer's, or both
// "mixed" when the PBX could not keep them apart): call.transcript.partial (the utterance in progress, replaced by
// the lane's next partial or by its final) and call.transcript.final (settled, never changed). The agent of the
// call gets them with the «Это …?» offer (call.identify: nothing is attached until «Да»); admins and QA get the
// transcripts of every call, and admins the live call.flagged («Слушать»: the listen_in request).
//
// Every word here is a caller's data (or a recogniser's idea of it): it goes into the page as text nodes only
// (util.js h()), each text in a <bdi> so a right-to-left mark inside it cannot reorder the label beside it, and a
// line too long to read is cut (MAX_TEXT), as the number of lines kept per call is bounded (MAX_FINALS).

import { translations } from "./i18n.js";
import { busy, callKey, errorDetail, errorText, errorToast, fmtDuration, h, setText, shownNumber, toast } from "./util.js";

const T = translations({
  "Оператор": "Agent",
  "Клиент": "Customer",
  "Речь": "Speech",
  "Разговор в реальном времени": "Live transcript",
  "Слушаем…": "Listening…",
  "Расшифровка прошлого звонка": "The last call's transcript",
  "Это {name}?": "Is this {name}?",
  "Услышано: {what}": "Heard: {what}",
  "госномер {said}": "plate {said}",
  "госномер без региона {said}": "plate without region {said}",
  "телефон {said}": "phone {said}",
  "фамилия {said}": "surname {said}",
  "Да": "Yes",
  "Нет": "No",
  "Карточка звонка: {name}": "The call's card: {name}",
  "Не удалось выбрать клиента: {error}": "Could not set the client: {error}",
  "Клиента уже нет в справочнике, или звонок завершён": "The client is no longer in the directory, or the call has ended",
  "Читать": "Read",
  "Читать разговор в реальном времени": "Read the call as it goes",
  "Закрыть": "Close",
  "звонок завершён": "call ended",
  "номер скрыт": "number withheld",
  "оператор {ext}": "agent {ext}",
  "очередь {queue}": "queue {queue}",
  "Слова в разговорах сейчас": "Words said in calls now",
  "Ключевые слова": "Keywords",
  "Сказано: {phrase}": "Said: {phrase}",
  "Слушать": "Listen",
  "Слушать разговор со своего телефона: без звука с вашей стороны": "Listen to the call on your own phone, silently",
  "Скрыть": "Hide",
  "Звоним на ваш телефон {ext}: снимите трубку, чтобы слушать разговор": "Calling your phone {ext}: pick it up to listen to the call",
  "Чтобы слушать, у вашего пользователя должен быть добавочный номер": "To listen, your user needs an extension",
  "Звонок уже завершён": "The call has already ended",
  "Не удалось подключиться к разговору: {error}": "Could not listen in: {error}",
});

/** Finals kept per call (an hours-long call keeps its latest lines; the page stays light). */
const MAX_FINALS = 2000;
/** Characters of one line shown: an endless line (a broken or hostile recogniser) is cut, never laid out whole. */
const MAX_TEXT = 2000;
/** Transcripts of ended calls kept in memory (the agent's last call, a supervisor's open reader). */
const KEEP_ENDED = 5;
/** How near the bottom (px) the reader counts as "following": new lines scroll it on; read further up, they don't. */
const FOLLOW_SLACK = 40;
const LANES = ["agent", "customer", "mixed"];

/** Who said a lane's words, in the panel's words. */
function who(lane) {
  if (lane === "agent") return T("Оператор");
  if (lane === "customer") return T("Клиент");
  return T("Речь"); // mixed (or a lane this panel does not know): both voices together
}

function clip(text) {
  const s = typeof text === "string" ? text : "";
  return s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}…` : s;
}

function seconds(value) {
  const n = Number(value);
  return Number.isFinite(n) && n >= 0 ? n : 0;
}

// -- the transcripts: what the panel heard of each call ------------------------------------------------------

/** One call's live transcript: the finals in the order they were said (by their start), and each lane's partial. */
class LiveCall {
  constructor(msg) {
    this.key = callKey(msg);
    this.linkedid = msg.linkedid;
    this.pbx = msg.pbx;
    this.finals = []; // {lane, speaker, text, start, end}
    this.partials = new Map(); // lane -> {lane, speaker, text, start, end}
    this.ended = false;
    this.endedAt = 0;
    this.watchers = new Set(); // boxes showing it: told of each change
  }

  get heard() {
    return this.finals.length > 0 || this.partials.size > 0;
  }

  tell(change) {
    for (const w of this.watchers) w.changed(change);
  }

  partial(msg) {
    const line = lineOf(msg);
    this.partials.set(line.lane, line);
    this.tell({ kind: "partial", line });
  }

  /** A final goes where it was said: after every final that started no later (the two lanes settle at different
   * moments, so a later arrival may have been said earlier); it replaces its lane's partial. */
  final(msg) {
    const line = lineOf(msg);
    let at = this.finals.length;
    while (at > 0 && this.finals[at - 1].start > line.start) at -= 1;
    this.finals.splice(at, 0, line);
    const dropped = this.partials.delete(line.lane);
    this.tell({ kind: "final", line, at, dropped });
    if (this.finals.length > MAX_FINALS) {
      this.finals.shift();
      this.tell({ kind: "trimmed" });
    }
  }

  end() {
    if (this.ended) return;
    this.ended = true;
    this.endedAt = Date.now();
    this.partials.clear(); // an utterance cut by the hang-up: its final may still come; meanwhile nothing is pending
    this.tell({ kind: "ended" });
  }
}

function lineOf(msg) {
  const lane = LANES.includes(msg.lane) ? msg.lane : "mixed";
  return { lane, speaker: msg.speaker, text: clip(msg.text), start: seconds(msg.start), end: seconds(msg.end) };
}

/** Every call's live transcript this panel has heard of, by callKey; ended calls are forgotten after a few. */
export class LiveTranscripts {
  constructor() {
    this.calls = new Map();
  }

  get(key) {
    return this.calls.get(key);
  }

  /** The call's transcript, started if new. */
  of(msg) {
    const key = callKey(msg);
    let call = this.calls.get(key);
    if (!call) {
      call = new LiveCall(msg);
      this.calls.set(key, call);
    }
    return call;
  }

  /** A server message; returns the call it changed (or null). */
  apply(msg) {
    switch (msg.type) {
      case "call.transcript.partial": {
        const call = this.of(msg);
        call.partial(msg);
        return call;
      }
      case "call.transcript.final": {
        const call = this.of(msg);
        call.final(msg);
        return call;
      }
      case "call.ended": {
        const call = this.calls.get(callKey(msg));
        if (!call) return null;
        call.end();
        this.forgetOld();
        return call;
      }
      default:
        return null;
    }
  }

  /** Ended calls beyond the latest KEEP_ENDED, and no box showing them, are dropped. */
  forgetOld() {
    const ended = [...this.calls.values()].filter((c) => c.ended).sort((a, b) => b.endedAt - a.endedAt);
    for (const call of ended.slice(KEEP_ENDED)) {
      if (!call.watchers.size) this.calls.delete(call.key);
    }
  }
}

// -- one transcript on the page ------------------------------------------------------------------------------

/** A call's transcript as a scrolling list: its finals as lines («Оператор», «Клиент», «Речь»), each lane's partial
 * in grey after them, replaced as it grows; kept scrolled to the newest line while the reader is at the bottom. */
export class TranscriptBox {
  constructor(call, { title = true } = {}) {
    this.call = call;
    this.lines = h("ol", { class: "live-lines", "data-test": "live-lines" });
    this.partialEls = new Map(); // lane -> li
    this.waiting = h("p", { class: "live-waiting muted", "data-test": "live-waiting" }, T("Слушаем…"));
    this.endedMark = h("span", { class: "live-ended", "data-test": "live-ended", hidden: true }, T("звонок завершён"));
    this.el = h("section", {
      class: "live-transcript", "data-test": "live-transcript", "data-linkedid": call.linkedid, "data-pbx": call.pbx,
      "aria-live": "off",
    },
    title ? h("div", { class: "live-head" }, h("h3", {}, T("Разговор в реальном времени")), this.endedMark) : null,
    this.waiting, this.lines);
    if (!title) this.el.append(this.endedMark);
    for (const line of call.finals) this.lines.append(this.lineEl(line, "live-final"));
    for (const lane of LANES) {
      const line = call.partials.get(lane);
      if (line) this.showPartial(line);
    }
    this.refresh();
    call.watchers.add(this);
  }

  /** Stop following the call (the box is gone from the page). */
  close() {
    this.call.watchers.delete(this);
  }

  lineEl(line, kind) {
    return h("li", { class: `live-line live-${line.lane} ${kind}`, "data-test": kind, "data-lane": line.lane },
      h("span", { class: "live-at" }, fmtDuration(line.start)),
      h("span", { class: "live-who", "data-test": "live-who" }, who(line.lane)),
      h("bdi", { class: "live-text", "data-test": "live-text" }, line.text));
  }

  showPartial(line) {
    const el = this.lineEl(line, "live-partial");
    const old = this.partialEls.get(line.lane);
    if (old) old.replaceWith(el);
    else this.lines.append(el);
    this.partialEls.set(line.lane, el);
    // Partials stay after the finals, in lane order (agent, customer, mixed), whatever order they arrived in.
    for (const lane of LANES) {
      const p = this.partialEls.get(lane);
      if (p) this.lines.append(p);
    }
  }

  dropPartial(lane) {
    const old = this.partialEls.get(lane);
    if (old) old.remove();
    this.partialEls.delete(lane);
  }

  changed(change) {
    const follow = this.following();
    switch (change.kind) {
      case "partial":
        this.showPartial(change.line);
        break;
      case "final": {
        this.dropPartial(change.line.lane);
        const el = this.lineEl(change.line, "live-final");
        const finals = this.lines.querySelectorAll(":scope > .live-final");
        if (change.at < finals.length) finals[change.at].before(el);
        else if (finals.length) finals[finals.length - 1].after(el);
        else this.lines.prepend(el);
        break;
      }
      case "trimmed": {
        const first = this.lines.querySelector(":scope > .live-final");
        if (first) first.remove();
        break;
      }
      case "ended":
        for (const lane of [...this.partialEls.keys()]) this.dropPartial(lane);
        break;
      default:
        break;
    }
    this.refresh();
    if (follow) this.toBottom();
  }

  refresh() {
    this.waiting.hidden = this.call.heard || this.call.ended;
    this.endedMark.hidden = !this.call.ended;
    this.el.dataset.ended = String(this.call.ended);
  }

  following() {
    const l = this.lines;
    return l.scrollHeight - l.scrollTop - l.clientHeight <= FOLLOW_SLACK;
  }

  toBottom() {
    this.lines.scrollTop = this.lines.scrollHeight;
  }
}

// -- the agent's view: the transcript beside the pop, «Это …?» ---------------------------------------------------

const HEARD = {
  plate: (said) => T("госномер {said}", { said }),
  partial_plate: (said) => T("госномер без региона {said}", { said }),
  phone: (said) => T("телефон {said}", { said }),
  surname: (said) => T("фамилия {said}", { said }),
};

/** What was heard, in the panel's words: «госномер А 123 ВС 77, фамилия Петрова». */
function heardText(heard) {
  const parts = (Array.isArray(heard) ? heard : []).slice(0, 4).map((e) => {
    const said = clip(e && e.said);
    const kind = e && Object.hasOwn(HEARD, e.kind) ? HEARD[e.kind] : null;
    return kind ? kind(said) : said;
  });
  return parts.join(", ");
}

/** The «Это …?» offer in the pop: the contact's name, what was heard, a glimpse of their card, «Да» / «Нет». */
class Offer {
  constructor(msg, { confirm, dismiss }) {
    this.msg = msg;
    const contact = msg.contact || null;
    const phones = contact ? (contact.phones_display && contact.phones_display.length ? contact.phones_display : contact.phones || []) : [];
    const car = contact && (contact.vehicles || [])[0];
    this.yes = h("button", { type: "button", class: "btn btn-small btn-primary", "data-test": "identify-yes",
      onclick: () => confirm(this) }, T("Да"));
    this.no = h("button", { type: "button", class: "btn btn-small", "data-test": "identify-no",
      onclick: () => dismiss(this) }, T("Нет"));
    const name = h("bdi", { class: "live-offer-name", "data-test": "identify-name" }, clip(msg.name));
    const [before, after] = T("Это {name}?").split("{name}");
    this.el = h("div", { class: "live-offer", "data-test": "identify-offer", "data-contact-id": msg.contact_id,
      role: "group" },
    h("div", { class: "live-offer-question" }, before, name, after),
    h("div", { class: "live-offer-heard", "data-test": "identify-heard" }, T("Услышано: {what}", { what: heardText(msg.heard) })),
    phones.length || car
      ? h("div", { class: "sub live-offer-card" },
        phones.length ? h("span", { class: "num" }, clip(phones[0])) : null,
        car ? h("span", { class: "live-offer-car" }, [car.make, car.model].filter(Boolean).join(" "),
          car.plate ? h("span", { class: "plate" }, car.plate) : null) : null)
      : null,
    h("div", { class: "live-offer-actions" }, this.yes, this.no));
  }

  set busy(value) {
    this.yes.disabled = value;
    this.no.disabled = value;
  }
}

/**
 * The agent's live audio: each pop gets its call's transcript (shown once something was said) and the «Это …?»
 * offer; when the call leaves the agent's phone its transcript is kept, folded, under the pops until the next one.
 * Mounted by agent.js: ``popShown(pop, call)`` when a pop is built, ``popGone(key)`` when it goes, ``onMessage``.
 */
export class AgentLive {
  constructor(ctx) {
    this.ctx = ctx;
    this.data = new LiveTranscripts();
    this.slots = new Map(); // callKey -> {holder, box, offerSlot}
    this.offers = new Map(); // callKey -> Offer (shown or waiting for its pop)
    this.lastBox = null;
    this.lastSlot = h("div", { class: "live-last-body" });
    this.lastEl = h("details", { class: "live-last", "data-test": "live-last", hidden: true },
      h("summary", {}, T("Расшифровка прошлого звонка")), this.lastSlot);
  }

  /** A pop was built for ``call``: the transcript and the offer go inside it, under the caller's card. */
  popShown(pop, call) {
    const key = call.key;
    if (this.slots.has(key)) return;
    const offerSlot = h("div", { class: "live-offer-slot" });
    const holder = h("div", { class: "live-in-pop", "data-test": "live-in-pop" }, offerSlot);
    const slot = { holder, offerSlot, box: null };
    this.slots.set(key, slot);
    pop.refs.card.after(holder);
    const live = this.data.get(key);
    if (live && live.heard) this.showBox(slot, live);
    const offer = this.offers.get(key);
    if (offer) offerSlot.append(offer.el);
  }

  showBox(slot, live) {
    if (slot.box) return;
    slot.box = new TranscriptBox(live);
    slot.holder.append(slot.box.el);
    slot.box.toBottom();
  }

  /** The pop went (the call left the agent's phone): its transcript, if any, is kept folded until the next. */
  popGone(key) {
    const slot = this.slots.get(key);
    this.slots.delete(key);
    this.offers.delete(key);
    if (!slot || !slot.box) return;
    if (this.lastBox) this.lastBox.close();
    this.lastBox = slot.box;
    this.lastSlot.replaceChildren(slot.box.el);
    this.lastEl.hidden = false;
    this.lastEl.open = false;
    this.data.forgetOld();
  }

  onMessage(msg) {
    const live = this.data.apply(msg);
    if (live && live.heard) {
      const slot = this.slots.get(live.key);
      if (slot) this.showBox(slot, live);
    }
    if (msg.type === "call.identify") this.offer(msg);
    if (msg.type === "call.ended") this.withdraw(callKey(msg));
    if (msg.type === "call.card") {
      // Confirmed (here or in the agent's other tab): the card is that contact's now, the question is answered.
      const offer = this.offers.get(callKey(msg));
      const contacts = (msg.card && msg.card.contacts) || [];
      if (offer && contacts.some((c) => c && c.id === offer.msg.contact_id)) this.withdraw(callKey(msg));
    }
  }

  offer(msg) {
    const key = callKey(msg);
    const me = this.ctx.store.me;
    const call = this.ctx.store.calls.get(key);
    if (call && me && me.extension && !call.agents.has(me.extension)) return; // not (or no longer) on my phone
    this.withdraw(key);
    const offer = new Offer(msg, { confirm: (o) => this.confirm(key, o), dismiss: (o) => this.dismiss(key, o) });
    this.offers.set(key, offer);
    const slot = this.slots.get(key);
    if (slot) slot.offerSlot.append(offer.el);
  }

  withdraw(key) {
    const offer = this.offers.get(key);
    if (offer) offer.el.remove();
    this.offers.delete(key);
  }

  async confirm(key, offer) {
    offer.busy = true;
    try {
      const data = await this.ctx.socket.request("identify.confirm",
        { linkedid: offer.msg.linkedid, pbx: offer.msg.pbx, contact_id: offer.msg.contact_id });
      this.withdraw(key);
      if (data && data.card && this.ctx.cardChanged) this.ctx.cardChanged(key, data.card);
      toast(T("Карточка звонка: {name}", { name: clip(offer.msg.name) }));
    } catch (err) {
      offer.busy = false;
      if (err && err.code === "not_found") {
        this.withdraw(key);
        errorToast(err, T("Клиента уже нет в справочнике, или звонок завершён"));
      } else {
        errorToast(err, T("Не удалось выбрать клиента: {error}", { error: errorText(err) }));
      }
    }
  }

  async dismiss(key, offer) {
    // «Нет» is the agent's answer whatever the server says: the offer goes at once and never comes back for the call.
    this.withdraw(key);
    try {
      await this.ctx.socket.request("identify.dismiss", { linkedid: offer.msg.linkedid, pbx: offer.msg.pbx });
    } catch (err) {
      if (!err || err.code !== "not_found") console.info("identify.dismiss:", err && err.code, errorDetail(err));
    }
  }
}

// -- the admin's view: read a call live, the live flags with «Слушать» ---------------------------------------------

/** Who a live notice or reader is about: the caller (as read), the agent, the queue. */
function aboutCall(src, call) {
  const caller = shownNumber(call, "caller") || shownNumber(src, "caller");
  const agent = (call && call.answered_by) || src.answered_by;
  const queue = (call && call.queue) || src.queue;
  return [caller || T("номер скрыт"), agent ? T("оператор {ext}", { ext: agent }) : null,
    queue ? T("очередь {queue}", { queue }) : null].filter(Boolean).join(" · ");
}

/**
 * The supervisor's live audio in the admin's view: on the call board a call with a live transcript gets «Читать»
 * (the reader, under the board, follows it as it goes); a live ``call.flagged`` is a notice by the alerts, with
 * their sound, and «Слушать» (the PBX rings the supervisor's own extension and lets them hear the call, silently).
 * Mounted by admin.js: ``boardButton(call)`` in each board row, ``readerEl``, ``flagsEl``, ``onMessage``, ``render``.
 */
export class AdminLive {
  constructor(ctx, { play = () => {} } = {}) {
    this.ctx = ctx;
    this.play = play;
    this.data = new LiveTranscripts();
    this.buttons = new Map(); // callKey -> the board row's «Читать»
    this.open = new Map(); // callKey -> {el, box}
    this.readerList = h("div", { class: "live-reader-list" });
    this.readerEl = h("section", { class: "panel live-reader", "data-test": "live-reader", hidden: true },
      h("div", { class: "panel-head" }, h("h2", {}, T("Разговор в реальном времени"))), this.readerList);
    this.flags = new Map(); // callKey -> {el, msg, hits, listen}
    this.flagList = h("ul", { class: "live-flag-list", "data-test": "live-flags-list" });
    this.flagsEl = h("section", { class: "panel live-flags", "data-test": "live-flags", hidden: true },
      h("div", { class: "panel-head" }, h("h2", {}, T("Слова в разговорах сейчас"))), this.flagList);
  }

  /** The board row's «Читать» for ``call``: shown once the call has a live transcript. */
  boardButton(call) {
    const key = call.key;
    const button = h("button", { type: "button", class: "btn btn-small", "data-test": "board-live",
      title: T("Читать разговор в реальном времени"), onclick: () => this.read(key) }, T("Читать"));
    const live = this.data.get(key);
    button.hidden = !(live && live.heard);
    this.buttons.set(key, button);
    return button;
  }

  /** Open (or bring forward) the reader of a call. */
  read(key) {
    let item = this.open.get(key);
    if (!item) {
      const live = this.data.get(key);
      if (!live) return;
      const box = new TranscriptBox(live, { title: false });
      const about = h("div", { class: "live-reader-about", "data-test": "live-reader-about" });
      const listen = this.listenButton(live);
      const close = h("button", { type: "button", class: "btn btn-small btn-ghost", "data-test": "live-close",
        onclick: () => this.closeReader(key) }, T("Закрыть"));
      const el = h("article", { class: "live-open", "data-test": "live-open", "data-linkedid": live.linkedid, "data-pbx": live.pbx },
        h("div", { class: "live-open-head" }, about, h("span", { class: "spacer" }), listen, close), box.el);
      item = { el, box, about, listen, live };
      this.open.set(key, item);
      this.readerList.prepend(el);
      this.readerEl.hidden = false;
      box.toBottom();
    }
    this.fillReader(item);
    item.el.scrollIntoView({ block: "nearest" });
  }

  fillReader(item) {
    const call = this.ctx.store.calls.get(item.live.key);
    if (call) setText(item.about, aboutCall({}, call));
    item.listen.disabled = item.live.ended;
  }

  closeReader(key) {
    const item = this.open.get(key);
    if (!item) return;
    item.box.close();
    item.el.remove();
    this.open.delete(key);
    this.readerEl.hidden = this.open.size === 0;
    this.data.forgetOld();
  }

  listenButton(src) {
    const button = h("button", { type: "button", class: "btn btn-small btn-primary", "data-test": "live-listen",
      title: T("Слушать разговор со своего телефона: без звука с вашей стороны") }, T("Слушать"));
    button.addEventListener("click", () => this.listen(src, button));
    return button;
  }

  /** «Слушать»: the PBX calls the supervisor's own phone into the call (quiet: they hear, nobody hears them). */
  listen(src, button) {
    const me = this.ctx.store.me || {};
    if (!me.extension) {
      toast(T("Чтобы слушать, у вашего пользователя должен быть добавочный номер"), "error");
      return;
    }
    busy(button, async () => {
      try {
        await this.ctx.socket.request("listen_in", { linkedid: src.linkedid, pbx: src.pbx });
      } catch (err) {
        let words = T("Не удалось подключиться к разговору: {error}", { error: errorText(err) });
        if (err && err.code === "not_found") words = T("Звонок уже завершён");
        if (err && err.code === "bad_message") words = T("Чтобы слушать, у вашего пользователя должен быть добавочный номер");
        errorToast(err, words);
        return;
      }
      toast(T("Звоним на ваш телефон {ext}: снимите трубку, чтобы слушать разговор", { ext: me.extension }));
    });
  }

  onMessage(msg) {
    const live = this.data.apply(msg);
    if (live) {
      const button = this.buttons.get(live.key);
      if (button) button.hidden = !live.heard;
      const item = this.open.get(live.key);
      if (item) this.fillReader(item);
    }
    if (msg.type === "call.flagged" && msg.live === true) this.flagged(msg);
    if (msg.type === "call.ended") {
      const flag = this.flags.get(callKey(msg));
      if (flag) this.fillFlag(flag, true);
    }
  }

  /** A live flag: one notice per call, gathering the keyword lists it matched; each new list rings once. */
  flagged(msg) {
    const key = callKey(msg);
    let flag = this.flags.get(key);
    const fresh = !flag;
    if (!flag) {
      const flags = h("div", { class: "live-flag-names" });
      const kind = h("div", { class: "alert-kind" }, T("Ключевые слова"));
      const what = h("div", { class: "live-flag-what" });
      const heard = h("div", { class: "sub live-flag-heard", "data-test": "live-flag-heard" });
      const listen = this.listenButton(msg);
      const read = h("button", { type: "button", class: "btn btn-small", "data-test": "live-flag-read",
        onclick: () => this.read(key) }, T("Читать"));
      const hide = h("button", { type: "button", class: "btn btn-small btn-ghost", "data-test": "live-flag-hide",
        onclick: () => this.hideFlag(key) }, T("Скрыть"));
      const ended = h("span", { class: "live-ended", "data-test": "live-ended", hidden: true }, T("звонок завершён"));
      const el = h("li", { class: "alert live-flag", "data-test": "live-flag", "data-linkedid": msg.linkedid, "data-pbx": msg.pbx },
        h("div", {}, kind, flags), h("div", { class: "alert-what" }, what, heard, ended), h("div", { class: "live-flag-actions" }, listen, read, hide));
      flag = { el, msg, names: [], hits: [], flags, what, heard, listen, read, ended };
      this.flags.set(key, flag);
      this.flagList.prepend(el);
      this.flagsEl.hidden = false;
    }
    const before = flag.names.length;
    for (const name of msg.flags || []) if (!flag.names.includes(name)) flag.names.push(name);
    for (const hit of msg.hits || []) flag.hits.push(hit);
    flag.msg = { ...flag.msg, ...msg };
    this.fillFlag(flag, false);
    if (fresh || flag.names.length > before) this.play();
  }

  fillFlag(flag, ended) {
    const call = this.ctx.store.calls.get(callKey(flag.msg));
    flag.flags.replaceChildren(...flag.names.map((n) => h("span", { class: "chip live-flag-name", "data-test": "live-flag-name" }, clip(n))));
    setText(flag.what, aboutCall(flag.msg, call));
    flag.heard.replaceChildren(...flag.hits.slice(-3).map((hit) => h("div", {},
      h("span", { class: "live-who" }, who(hit.speaker === "unknown" ? "mixed" : hit.speaker)), " ",
      h("bdi", {}, T("Сказано: {phrase}", { phrase: clip(hit.phrase) })))));
    const over = ended || !call;
    flag.ended.hidden = !over;
    flag.listen.disabled = over;
    flag.el.dataset.ended = String(over);
    const live = this.data.get(callKey(flag.msg));
    flag.read.hidden = !(live && live.heard);
  }

  hideFlag(key) {
    const flag = this.flags.get(key);
    if (flag) flag.el.remove();
    this.flags.delete(key);
    this.flagsEl.hidden = this.flags.size === 0;
  }

  render() {
    for (const [key, button] of this.buttons) if (!this.ctx.store.calls.has(key)) this.buttons.delete(key);
    for (const item of this.open.values()) this.fillReader(item);
    for (const flag of this.flags.values()) if (flag.el.dataset.ended !== "true") this.fillFlag(flag, false);
  }
}
