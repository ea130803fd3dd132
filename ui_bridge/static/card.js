// The caller card in the pop, the client directory search and the one-click "new client" form.
// HTTP: GET /api/contacts?q=, POST /api/contacts, POST /api/calls/{linkedid}/contact (see ui_bridge/routes/directory.py).

import { translations } from "./i18n.js";
import { api, query } from "./net.js";
import { busy, errorText, fmtShortDateTime, h, label, shownNumber, toast } from "./util.js";

const T = translations({
  "Заметки": "Notes",
  "Почта": "E-mail",
  "Показать полностью": "Show more",
  "Свернуть": "Show less",
  "Имя, телефон, госномер или марка": "Name, phone, licence plate or car make",
  "организация": "company",
  "партнёр": "partner",
  "сотрудник": "employee",
  "номер скрыт": "number withheld",
  "постоянный": "regular",
  "новый": "new",
  "{name} (доб. {ext})": "{name} (ext. {ext})",
  "доб. {ext}": "ext. {ext}",
  "Клиент": "Client",
  "нет в справочнике": "not in the directory",
  "Также: ": "Also: ",
  "Пропущенные без ответа: {n}": "Missed, not called back: {n}",
  "Последние звонки": "Recent calls",
  "клиент «{name}» сохранён, но не привязан к звонку": "client “{name}” saved but not attached to the call",
  "+ Новый клиент": "+ New client",
  "Фамилия Имя Отчество": "Full name",
  "имя клиента": "client's name",
  "Госномер": "Plate",
  "госномер": "licence plate",
  "Марка": "Make",
  "марка автомобиля": "car make",
  "Сохранить": "Save",
  "Телефон: ": "Phone: ",
  "Отмена": "Cancel",
  "Введите имя клиента": "Enter the client's name",
  "Клиент «{name}» добавлен в справочник": "Client “{name}” added to the directory",
  "поиск в справочнике": "directory search",
  "Найти": "Search",
  "Справочник клиентов": "Client directory",
  "Найдено: {n}": "Found: {n}",
  "Никого не нашли": "Nobody found",
  "привязать к звонку": "attach to the call",
  "в карточке звонка": "on the call's card",
  "к звонку {number}": "to the call {number}",
  "«{name}» привязан к звонку": "“{name}” attached to the call",
});

const MAX_LAST_CALLS = 5;
/** Notes longer than this many characters are clipped in the card, with "show more". */
export const NOTES_CLIP = 160;
const KINDS = { corporate: T("организация"), partner: T("партнёр"), employee: T("сотрудник") };

/** "Kia Rio 2019" */
function carName(v) {
  return [v.make, v.model, v.year].filter((x) => x !== null && x !== undefined && x !== "").join(" ");
}

function vehicleEl(v, testId) {
  const name = carName(v);
  return h("span", { class: "vehicle", "data-test": testId },
    name ? h("span", { class: "vehicle-name" }, name) : null,
    v.plate ? h("span", { class: "plate" }, v.plate) : null);
}

/** A contact's e-mail and notes: text only (they come from a CSV or a CRM), long notes clipped with "show more". */
function contactDetails(contact) {
  const out = [];
  if (contact.email) {
    out.push(h("div", { class: "card-email" }, h("span", { class: "card-label" }, T("Почта")),
      h("span", { "data-test": "card-email" }, contact.email)));
  }
  const notes = (contact.notes || "").trim();
  if (notes) {
    const long = notes.length > NOTES_CLIP;
    const text = h("span", { class: "card-notes-text", "data-test": "card-notes-text" },
      long ? `${notes.slice(0, NOTES_CLIP).trimEnd()}…` : notes);
    const box = h("div", { class: "card-notes", "data-test": "card-notes", "data-clipped": String(long) },
      h("span", { class: "card-label" }, T("Заметки")), text);
    if (long) {
      const more = h("button", { type: "button", class: "link", "data-test": "card-notes-more" }, T("Показать полностью"));
      more.addEventListener("click", () => {
        const open = box.dataset.clipped === "true";
        box.dataset.clipped = String(!open);
        text.textContent = open ? notes : `${notes.slice(0, NOTES_CLIP).trimEnd()}…`;
        more.textContent = open ? T("Свернуть") : T("Показать полностью");
      });
      box.append(" ", more);
    }
    out.push(box);
  }
  return out;
}

function statusBadge(card) {
  const text = card.withheld ? T("номер скрыт") : { repeat: T("постоянный"), new: T("новый") }[card.status];
  if (!text) return null;
  return h("span", { class: `badge card-${card.withheld ? "withheld" : card.status}`, "data-test": "card-status",
    "data-status": card.status, title: card.withheld ? "" : label("cardStatus", card.status) }, text);
}

function lastCallEl(c, agentName) {
  let who = "";
  if (c.outcome === "answered" && c.answered_by) {
    const name = agentName(c.answered_by);
    who = name ? T("{name} (доб. {ext})", { name, ext: c.answered_by }) : T("доб. {ext}", { ext: c.answered_by });
  } else if (c.missed_reason) {
    who = label("reason", c.missed_reason);
  }
  return h("li", { class: "card-call", "data-test": "card-last-call", "data-linkedid": c.linkedid },
    h("span", { class: "num" }, fmtShortDateTime(c.started_at)),
    h("span", { class: `badge outcome-${c.outcome}` }, label("outcome", c.outcome)),
    who ? h("span", { class: "muted" }, who) : null);
}

/** The card's content (what the directory knows about the caller), rebuilt whenever the card changes. */
export function cardContent(card, { agentName = () => null } = {}) {
  const contacts = (card && card.contacts) || [];
  const first = contacts[0];
  const head = h("div", { class: "card-head" }, h("span", { class: "card-label" }, T("Клиент")));
  const badge = card && !(card.withheld && !first) ? statusBadge(card) : null;
  if (badge) head.append(h("span", { class: "spacer" }), badge);
  const out = [head];
  if (first) {
    out.push(h("div", { class: "card-title" },
      h("span", { class: "card-name", "data-test": "card-name" }, (card && card.name) || first.name),
      KINDS[first.kind] ? h("span", { class: "chip chip-small" }, KINDS[first.kind]) : null));
  } else {
    out.push(h("div", { class: "card-title muted", "data-test": "card-empty" },
      card && card.withheld ? T("номер скрыт") : T("нет в справочнике")));
  }
  const cars = (first && first.vehicles) || [];
  if (cars.length) out.push(h("div", { class: "card-vehicles" }, cars.map((v) => vehicleEl(v, "card-vehicle"))));
  if (first) out.push(...contactDetails(first));
  if (contacts.length > 1) {
    out.push(h("div", { class: "card-others", "data-test": "card-others" }, T("Также: "),
      contacts.slice(1).map((c) => c.name).join(", ")));
  }
  if (card && card.open_missed > 0) {
    out.push(h("div", { class: "card-missed", "data-test": "card-open-missed", "data-count": card.open_missed },
      T("Пропущенные без ответа: {n}", { n: card.open_missed })));
  }
  const calls = ((card && card.last_calls) || []).slice(0, MAX_LAST_CALLS);
  if (calls.length) {
    out.push(h("div", { class: "card-sub" }, T("Последние звонки")),
      h("ul", { class: "card-calls" }, calls.map((c) => lastCallEl(c, agentName))));
  }
  return out;
}

/** Create a contact, then attach it to the call; resolves with the attach reply ({linkedid, contact_id, card}). */
export async function createAndAttach(call, draft) {
  const { contact } = await api("/api/contacts", { method: "POST", body: draft });
  try {
    return await attach(call, contact.id);
  } catch (err) {
    // The contact is kept: say so in the panel's words, with why the attach failed (errorText by the code).
    throw { code: err.code, status: err.status, message: err.message,
      words: `${T("клиент «{name}» сохранён, но не привязан к звонку", { name: contact.name })}: ${errorText(err)}` };
  }
}

/** Attach a contact to a call (``call``: {linkedid, pbx}; a linkedid is unique only within its PBX). */
export function attach(call, contactId) {
  const pbx = call.pbx ? `?pbx=${encodeURIComponent(call.pbx)}` : "";
  return api(`/api/calls/${encodeURIComponent(call.linkedid)}/contact${pbx}`,
    { method: "POST", body: { contact_id: contactId } });
}

/**
 * "Новый клиент": a one-line button in the pop that opens a tiny form (name, plate, make) for the caller's
 * number. Lives outside the card's content, so a card update does not wipe what is being typed.
 */
export class NewContactForm {
  constructor(call, onCard) {
    this.call = { linkedid: call.linkedid, pbx: call.pbx, key: call.key };
    this.onCard = onCard;
    this.number = null;
    this.open = h("button", { type: "button", class: "btn btn-small", "data-test": "new-contact",
      onclick: () => this.show() }, T("+ Новый клиент"));
    this.name = h("input", { type: "text", placeholder: T("Фамилия Имя Отчество"), "data-test": "new-contact-name",
      "aria-label": T("имя клиента"), autocomplete: "off", maxlength: 200 });
    this.plate = h("input", { type: "text", placeholder: T("Госномер"), "data-test": "new-contact-plate",
      "aria-label": T("госномер"), autocomplete: "off", maxlength: 20, size: 10 });
    this.make = h("input", { type: "text", placeholder: T("Марка"), "data-test": "new-contact-make",
      "aria-label": T("марка автомобиля"), autocomplete: "off", maxlength: 60, size: 10 });
    this.phone = h("span", { class: "num", "data-test": "new-contact-phone" });
    this.save = h("button", { type: "submit", class: "btn btn-primary btn-small", "data-test": "new-contact-save" },
      T("Сохранить"));
    this.form = h("form", { class: "new-contact-form", "data-test": "new-contact-form", hidden: true,
      onsubmit: (e) => { e.preventDefault(); this.submit(); } },
    this.name,
    h("div", { class: "new-contact-row" }, this.plate, this.make),
    h("div", { class: "new-contact-row" }, h("span", { class: "muted" }, T("Телефон: "), this.phone),
      h("span", { class: "spacer" }),
      h("button", { type: "button", class: "btn btn-ghost btn-small", "data-test": "new-contact-cancel",
        onclick: () => this.hide() }, T("Отмена")),
      this.save));
    this.el = h("div", { class: "new-contact" }, this.open, this.form);
  }

  /** Offered only for a known number that the directory does not know yet. */
  update(card, number) {
    this.number = (card && card.number) || number || null;
    const offer = Boolean(this.number) && !(card && card.withheld) && !((card && card.contacts) || []).length;
    this.el.hidden = !offer;
    this.phone.textContent = (card && card.number && card.number_display) || this.number || "";
    if (!offer) this.hide();
  }

  show() {
    this.open.hidden = true;
    this.form.hidden = false;
    this.name.focus();
  }

  hide() {
    this.form.hidden = true;
    this.open.hidden = false;
  }

  async submit() {
    const name = this.name.value.trim();
    if (!name) {
      toast(T("Введите имя клиента"), "error");
      this.name.focus();
      return;
    }
    const plate = this.plate.value.trim();
    const make = this.make.value.trim();
    const draft = { name, phones: [this.number] };
    if (plate || make) draft.vehicles = [{ plate: plate || null, make: make || null }];
    const reply = await busy(this.save, () => createAndAttach(this.call, draft));
    if (!reply) return;
    toast(T("Клиент «{name}» добавлен в справочник", { name }));
    for (const input of [this.name, this.plate, this.make]) input.value = "";
    this.hide();
    this.onCard(this.call.key, reply.card);
  }
}

/**
 * The directory search: one box for a phone number, a name or a word of one, a licence plate (Cyrillic or Latin
 * letters), the plate's digits or a car make (Russian, English or the wrong keyboard layout). Each result can be attached to the current call (the newest on the agent's phone).
 */
export class Directory {
  constructor(onCard) {
    this.onCard = onCard;
    this.call = null;
    this.items = [];
    this.input = h("input", { type: "search", placeholder: T("Имя, телефон, госномер или марка"), "data-test": "directory-query",
      "aria-label": T("поиск в справочнике"), autocomplete: "off", maxlength: 100 });
    this.button = h("button", { type: "submit", class: "btn", "data-test": "directory-search" }, T("Найти"));
    this.status = h("div", { class: "directory-status muted", "data-test": "directory-status", hidden: true });
    this.list = h("ul", { class: "directory-results", "data-test": "directory-results" });
    this.el = h("section", { class: "panel", "data-test": "directory" },
      h("div", { class: "panel-head" }, h("h2", {}, T("Справочник клиентов"))),
      h("form", { class: "dial", role: "search", onsubmit: (e) => { e.preventDefault(); this.search(); } },
        this.input, this.button),
      this.status, this.list);
  }

  /** The call that "привязать к звонку" attaches to (null: no call, no attach buttons). */
  setCall(call) {
    this.call = call || null;
    for (const item of this.items) this.fillAttach(item);
  }

  async search() {
    const q = this.input.value.trim();
    if (!q) {
      this.input.focus();
      return;
    }
    this.status.hidden = true;
    const data = await busy(this.button, () => api(`/api/contacts${query({ q, limit: 20 })}`));
    if (!data) return;
    const contacts = data.contacts || [];
    this.items = contacts.map((c) => this.makeItem(c));
    this.list.replaceChildren(...this.items.map((i) => i.el));
    this.status.hidden = false;
    this.status.textContent = contacts.length ? T("Найдено: {n}", { n: contacts.length }) : T("Никого не нашли");
  }

  makeItem(contact) {
    const button = h("button", { type: "button", class: "btn btn-small", "data-test": "directory-attach" },
      T("привязать к звонку"));
    const item = { contact, button, el: null };
    button.addEventListener("click", () => this.attach(item));
    item.el = h("li", { class: "directory-result", "data-test": "directory-result", "data-contact-id": contact.id ?? "" },
      h("div", { class: "result-main" },
        h("div", {}, h("strong", { "data-test": "directory-name" }, contact.name),
          KINDS[contact.kind] ? h("span", { class: "chip chip-small" }, KINDS[contact.kind]) : null,
          contact.source === "crm" ? h("span", { class: "chip chip-small" }, "CRM") : null),
        (contact.phones || []).length
          ? h("div", { class: "sub num", "data-test": "directory-phones" },
            contact.phones.map((p, i) => (contact.phones_display || [])[i] || p).join(", ")) : null,
        (contact.vehicles || []).length
          ? h("div", { class: "result-vehicles" }, contact.vehicles.map((v) => vehicleEl(v, "directory-vehicle"))) : null),
      button);
    this.fillAttach(item);
    return item;
  }

  fillAttach(item) {
    const call = this.call;
    const shown = call && call.card && (call.card.contacts || [])[0];
    const attached = Boolean(shown && item.contact.id !== null && shown.id === item.contact.id);
    item.button.hidden = !call || item.contact.id === null || item.contact.id === undefined;
    item.button.disabled = attached;
    item.button.textContent = attached ? T("в карточке звонка") : T("привязать к звонку");
    item.button.title = call ? T("к звонку {number}", { number: shownNumber(call, "caller") || shownNumber(call, "called") || "" }).trim() : "";
  }

  async attach(item) {
    const call = this.call;
    if (!call) return;
    const reply = await busy(item.button, () => attach(call, item.contact.id));
    if (!reply) return;
    toast(T("«{name}» привязан к звонку", { name: item.contact.name }));
    this.onCard(call.key, reply.card);
  }
}
