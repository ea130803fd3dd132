// Small helpers shared by the panel's modules: DOM building, formatting, labels, toasts.
// Every piece of data goes into the page through textContent (never innerHTML), so a caller name
// cannot inject markup.

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

export function fmtDateTime(iso) {
  const m = iso && ISO.exec(iso);
  return m ? `${m[3]}.${m[2]}.${m[1]} ${m[4]}:${m[5]}` : "";
}

/** "24.11 10:15": for lists of recent things, where the year is obvious. */
export function fmtShortDateTime(iso) {
  const m = iso && ISO.exec(iso);
  return m ? `${m[3]}.${m[2]} ${m[4]}:${m[5]}` : "";
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

// -- labels (Russian UI, English values) -----------------------------------------------------------------

export const LABELS = {
  role: { agent: "оператор", admin: "администратор", qa: "контроль качества" },
  direction: { inbound: "входящий", outbound: "исходящий", internal: "внутренний" },
  outcome: { answered: "отвечен", missed: "пропущен", failed: "не состоялся" },
  callState: { ringing: "Входящий звонок", talking: "Разговор", dialing: "Набор", ended: "Завершён" },
  legState: { ringing: "звонит", talking: "разговор", dialing: "набор", ended: "завершён" },
  agentState: {
    idle: "свободен", ringing: "звонит", in_call: "разговор", paused: "пауза",
    offline: "не в сети", unknown: "неизвестно",
  },
  reason: {
    no_answer: "нет ответа", busy: "занято", caller_hangup_ringing: "абонент положил трубку",
    short_abandon: "короткий сброс", abandoned: "ушёл из очереди", queue_abandoned: "ушёл из очереди",
    voicemail: "голосовая почта", unavailable: "телефон недоступен", queue_timeout: "тайм-аут очереди",
  },
  cardStatus: { unknown: "неизвестный номер", new: "новый клиент", repeat: "повторное обращение" },
  closedBy: { manual: "вручную", callback: "перезвонили", called_again: "клиент перезвонил" },
  pauseReason: { break: "перерыв", lunch: "обед", training: "обучение", other: "другое", admin: "администратор" },
};

export function label(group, value) {
  if (value === null || value === undefined || value === "") return "";
  return (LABELS[group] && LABELS[group][value]) || String(value);
}

// -- errors in plain words -------------------------------------------------------------------------------

const ERROR_WORDS = {
  bad_json: "Сервер не понял запрос",
  bad_message: "Неверные данные запроса",
  too_large: "Слишком большой запрос",
  forbidden: "Недостаточно прав",
  not_found: "Не найдено (возможно, звонок уже завершён)",
  conflict: "Действие сейчас невозможно",
  pbx_unavailable: "Нет связи с АТС",
  pbx_timeout: "АТС не ответила вовремя",
  pbx_refused: "АТС отклонила команду",
  internal: "Внутренняя ошибка сервера",
  disconnected: "Нет связи с сервером",
  timeout: "Сервер не ответил вовремя",
};

export function errorText(err) {
  const code = err && err.code;
  const words = ERROR_WORDS[code];
  const detail = err && err.message;
  if (words && detail && detail !== words) return `${words}: ${detail}`;
  return words || detail || "Ошибка";
}

// -- toasts ------------------------------------------------------------------------------------------------

export function toast(message, kind = "info") {
  let box = document.getElementById("toasts");
  if (!box) {
    box = h("div", { id: "toasts", class: "toasts", "data-test": "toasts", "aria-live": "polite" });
    document.body.append(box);
  }
  const item = h("div", { class: `toast toast-${kind}`, "data-test": "toast", role: kind === "error" ? "alert" : "status" },
    message);
  item.addEventListener("click", () => item.remove());
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 10000 : 5000);
  return item;
}

/** Run an async action from a button: disable it meanwhile, show errors as toasts. */
export async function busy(button, action) {
  if (button) button.disabled = true;
  try {
    return await action();
  } catch (err) {
    toast(errorText(err), "error");
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}
