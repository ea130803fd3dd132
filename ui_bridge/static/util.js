// Small helpers shared by the panel's modules: DOM building, formatting, labels, toasts.
// Every piece of data goes into the page through textContent (never innerHTML), so a caller name
// cannot inject markup.

import { lang, translations } from "./i18n.js";

const T = translations({
  "оператор": "agent",
  "администратор": "admin",
  "контроль качества": "quality control",
  "сотрудник": "employee",
  "входящий": "inbound",
  "исходящий": "outbound",
  "внутренний": "internal",
  "отвечен": "answered",
  "пропущен": "missed",
  "не состоялся": "failed",
  "Входящий звонок": "Incoming call",
  "Разговор": "Talking",
  "Набор": "Dialling",
  "Завершён": "Ended",
  "звонит": "ringing",
  "разговор": "talking",
  "набор": "dialling",
  "завершён": "ended",
  "свободен": "available",
  "пауза": "paused",
  "не в сети": "offline",
  "неизвестно": "unknown",
  "нет ответа": "no answer",
  "занято": "busy",
  "абонент положил трубку": "caller hung up while ringing",
  "короткий сброс": "short abandon",
  "ушёл из очереди": "left the queue",
  "голосовая почта": "voicemail",
  "телефон недоступен": "phone unavailable",
  "тайм-аут очереди": "queue timeout",
  "неизвестный номер": "unknown number",
  "новый клиент": "new client",
  "повторное обращение": "repeat caller",
  "вручную": "by hand",
  "перезвонили": "called back",
  "клиент перезвонил": "the client called again",
  "перерыв": "break",
  "обед": "lunch",
  "обучение": "training",
  "другое": "other",
  "Сервер не понял запрос": "The server did not understand the request",
  "Неверные данные запроса": "Invalid request data",
  "Слишком большой запрос": "The request is too large",
  "Недостаточно прав": "Not allowed",
  "Требуется вход": "Please log in",
  "Не найдено (возможно, звонок уже завершён)": "Not found (the call may have ended)",
  "Действие сейчас невозможно": "Not possible right now",
  "Слишком много команд подряд: подождите несколько секунд": "Too many commands in a row: wait a few seconds",
  "Нет связи с АТС": "No link to the PBX",
  "АТС не ответила вовремя": "The PBX did not answer in time",
  "АТС отклонила команду": "The PBX refused the command",
  "Внутренняя ошибка сервера": "Internal server error",
  "Нет связи с сервером": "No connection to the server",
  "Сервер не ответил вовремя": "The server did not answer in time",
  "Сервер ответил ошибкой ({status})": "The server answered with an error ({status})",
  "Ошибка": "Error",
});

/** h("button", {class: "btn", "data-test": "x", onclick: fn}, "text", child, [more]) */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "value") {
      el.value = value;
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function setText(el, text) {
  const value = text === null || text === undefined ? "" : String(text);
  if (el.textContent !== value) el.textContent = value;
}

// -- time ---------------------------------------------------------------------------------------------
// Times come as ISO strings with the PBX's UTC offset; they are shown as the PBX's wall clock (the digits
// of the string), which is the call centre's local time whatever the browser's time zone is.

const ISO = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})/;

export function fmtTime(iso) {
  const m = iso && ISO.exec(iso);
  return m ? `${m[4]}:${m[5]}:${m[6]}` : "";
}

// The day before the month in both languages; the separator is the language's (24.11.2026, 24/11/2026: en-GB).
const DATE_SEP = lang === "en" ? "/" : ".";

export function fmtDateTime(iso) {
  const m = iso && ISO.exec(iso);
  return m ? `${m[3]}${DATE_SEP}${m[2]}${DATE_SEP}${m[1]} ${m[4]}:${m[5]}` : "";
}

/** A day ("2026-11-24", the supervisor's figures) as the language writes it: 24.11.2026, 24/11/2026. */
export function fmtDay(day) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day || "");
  return m ? `${m[3]}${DATE_SEP}${m[2]}${DATE_SEP}${m[1]}` : day || "";
}

/** "24.11 10:15": for lists of recent things, where the year is obvious. */
export function fmtShortDateTime(iso) {
  const m = iso && ISO.exec(iso);
  return m ? `${m[3]}${DATE_SEP}${m[2]} ${m[4]}:${m[5]}` : "";
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

// -- numbers ------------------------------------------------------------------------------------------------
// The server sends each number it shows as given (`caller`) and as people read it (`caller_display`: +7 916
// 123-45-67 or 8 (916) 123-45-67 per [directory] number_style, ui_bridge/numbers.py): the panel shows the
// latter and never formats a number itself.

/** ``item[field]`` as people read it: its ``_display`` twin when the server sent one, else as given. */
export function shownNumber(item, field) {
  if (!item) return null;
  const display = item[`${field}_display`];
  return display || item[field] || null;
}

// -- PBXs --------------------------------------------------------------------------------------------------
// A daemon may follow several PBXs; a linkedid and an extension are unique only within their PBX, so the panel
// keys calls by (PBX, linkedid) and shows each call's PBX by its name when the user sees more than one
// (`hello.pbxs`).

const PBXS = { list: [], names: new Map() };

export function setPbxs(list) {
  PBXS.list = Array.isArray(list) ? list : [];
  PBXS.names = new Map(PBXS.list.map((p) => [p.id, p.name || p.id]));
}

/** The PBXs the user sees ([{id, name}]). */
export function pbxList() {
  return PBXS.list;
}

/** Whether the user sees more than one PBX: then calls and missed entries show their PBX. */
export function manyPbxs() {
  return PBXS.list.length > 1;
}

export function pbxName(id) {
  return PBXS.names.get(id) || id || "";
}

/** A call's key in the panel: its PBX and linkedid (two PBXs can hand out the same linkedid). */
export function callKey(msg) {
  return `${msg.pbx || "main"}|${msg.linkedid}`;
}

/** An agent's key: their PBX and extension (101 on two PBXs is two agents). */
export function agentKey(msg) {
  return `${msg.pbx || "main"}|${msg.extension}`;
}

// -- labels (the panel's words for the protocol's values) ----------------------------------------------------

export const LABELS = {
  role: { agent: T("оператор"), admin: T("администратор"), qa: T("контроль качества"), employee: T("сотрудник") },
  direction: { inbound: T("входящий"), outbound: T("исходящий"), internal: T("внутренний") },
  outcome: { answered: T("отвечен"), missed: T("пропущен"), failed: T("не состоялся") },
  callState: { ringing: T("Входящий звонок"), talking: T("Разговор"), dialing: T("Набор"), ended: T("Завершён") },
  legState: { ringing: T("звонит"), talking: T("разговор"), dialing: T("набор"), ended: T("завершён") },
  agentState: {
    idle: T("свободен"), ringing: T("звонит"), in_call: T("разговор"), paused: T("пауза"),
    offline: T("не в сети"), unknown: T("неизвестно"),
  },
  reason: {
    no_answer: T("нет ответа"), busy: T("занято"), caller_hangup_ringing: T("абонент положил трубку"),
    short_abandon: T("короткий сброс"), abandoned: T("ушёл из очереди"), queue_abandoned: T("ушёл из очереди"),
    voicemail: T("голосовая почта"), unavailable: T("телефон недоступен"), queue_timeout: T("тайм-аут очереди"),
  },
  cardStatus: { unknown: T("неизвестный номер"), new: T("новый клиент"), repeat: T("повторное обращение") },
  closedBy: { manual: T("вручную"), callback: T("перезвонили"), called_again: T("клиент перезвонил") },
  pauseReason: { break: T("перерыв"), lunch: T("обед"), training: T("обучение"), other: T("другое"), admin: T("администратор") },
};

/** A protocol value in the panel's words; a value this panel has no word for (a newer server's) shows as a
 * neutral word, never as the raw English token. */
export function label(group, value) {
  if (value === null || value === undefined || value === "") return "";
  return (LABELS[group] && LABELS[group][value]) || T("другое");
}

// -- errors in plain words -------------------------------------------------------------------------------
// The panel says what went wrong in its own words, by the error's code; the server's own text (English, for
// developers and logs) never goes into the sentence: it is kept as the toast's title and in the console.

const ERROR_WORDS = {
  bad_json: T("Сервер не понял запрос"),
  bad_message: T("Неверные данные запроса"),
  bad_request: T("Неверные данные запроса"),
  too_large: T("Слишком большой запрос"),
  forbidden: T("Недостаточно прав"),
  unauthorized: T("Требуется вход"),
  not_found: T("Не найдено (возможно, звонок уже завершён)"),
  conflict: T("Действие сейчас невозможно"),
  rate_limited: T("Слишком много команд подряд: подождите несколько секунд"),
  pbx_unavailable: T("Нет связи с АТС"),
  pbx_timeout: T("АТС не ответила вовремя"),
  pbx_refused: T("АТС отклонила команду"),
  internal: T("Внутренняя ошибка сервера"),
  disconnected: T("Нет связи с сервером"),
  timeout: T("Сервер не ответил вовремя"),
};

/** An error ({code, message, status}) in the panel's words. */
export function errorText(err) {
  if (err && typeof err.words === "string") return err.words; // a module's own sentence (card.js createAndAttach)
  const code = err && err.code;
  if (ERROR_WORDS[code]) return ERROR_WORDS[code];
  const status = err && err.status;
  if (status >= 500) return ERROR_WORDS.internal;
  return status ? T("Сервер ответил ошибкой ({status})", { status }) : T("Ошибка");
}

/** The server's own text of an error (English, for whoever debugs): a title, the console, never the sentence. */
export function errorDetail(err) {
  return (err && typeof err.message === "string" && err.message) || "";
}

// -- toasts ------------------------------------------------------------------------------------------------

/** A short message in the corner; ``detail`` (the server's text of an error) goes to its title, not its text. */
export function toast(message, kind = "info", detail = "") {
  let box = document.getElementById("toasts");
  if (!box) {
    box = h("div", { id: "toasts", class: "toasts", "data-test": "toasts", "aria-live": "polite" });
    document.body.append(box);
  }
  const item = h("div", { class: `toast toast-${kind}`, "data-test": "toast", role: kind === "error" ? "alert" : "status",
    title: detail || null }, message);
  item.addEventListener("click", () => item.remove());
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 10000 : 5000);
  return item;
}

/** An error as a toast: the panel's words, the server's text in its title and the console. */
export function errorToast(err, words = errorText(err)) {
  if (errorDetail(err)) console.info("server:", err.code, errorDetail(err));
  return toast(words, "error", errorDetail(err));
}

/** Run an async action from a button: disable it meanwhile, show errors as toasts. */
export async function busy(button, action) {
  if (button) button.disabled = true;
  try {
    return await action();
  } catch (err) {
    errorToast(err);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

/**
 * The items pushes changed while a list is loading. A list read from the server is a picture of the moment it was
 * read, and a push (over the WebSocket) may come between that read and the list's arrival: the pushed item is newer
 * than the list says, so the list neither removes it nor sets it back. `begin()` before the request, `touch(id)` on
 * every push, `end(changed)` when the list came (also when it failed).
 */
export class PushedWhileLoading {
  constructor() {
    this.loads = new Set();
  }

  begin() {
    const changed = new Set();
    this.loads.add(changed);
    return changed;
  }

  touch(id) {
    for (const changed of this.loads) changed.add(id);
  }

  end(changed) {
    this.loads.delete(changed);
  }
}
