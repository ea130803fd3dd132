// Complaints and claims at the panel (issue 15; docs/complaints.md, "In the panel"): registering one from the call in
// progress (the pop's «Жалоба», the script's «Жалоба» route) or by hand, each user's tasks with their deadlines, the
// managers' overdue list with reassignment, the list with its filters and CSV, and the complaint's card (every field,
// the stage's form and what it still needs, the action plan, the files, the history, questions to colleagues).
//
// The server decides everything (ui_bridge/complaints.py: the rules say who may do what and what a stage needs); this
// module shows what it says and sends what the user does. Requests go to the JSON API (ui_bridge/routes/complaints.py);
// complaint.registered / changed / task / overdue keep the open views live. A refusal is shown in the panel's
// language (the server words it in both) next to the fields it names. Names and texts from users and clients are
// text nodes (h()), never markup; a file's name is text and its link goes by the file's id only.

import { ComplaintsReport } from "./complaints_report.js";
import { lang, translations } from "./i18n.js";
import { ApiError, api, query } from "./net.js";
import { PushedWhileLoading, callKey, clear, errorText, errorToast, fmtDateTime, fmtShortDateTime, h, setText, shownNumber, toast } from "./util.js";

const T = translations({
  "Новая жалоба": "New complaint",
  "Тип": "Type",
  "— выберите —": "— choose —",
  "Суть жалобы": "What happened",
  "Вид": "Kind",
  "от клиента": "from a client",
  "наша поставщику": "ours, to a supplier",
  "Клиент": "Client",
  "Имя клиента": "Client's name",
  "Телефон": "Phone",
  "Эл. почта": "E-mail",
  "Автомобиль": "Car",
  "Госномер": "Plate",
  "Предмет": "Subject",
  "Вид предмета": "Subject kind",
  "Ответственный": "Responsible",
  "по умолчанию": "the default",
  "Зарегистрировать": "Register",
  "Отмена": "Cancel",
  "Закрыть": "Close",
  "Жалоба {number} зарегистрирована": "Complaint {number} registered",
  "Звонок: {number}": "Call: {number}",
  "Выберите тип жалобы": "Choose the complaint's type",
  "Выберите, кому": "Choose whom",
  "Опишите жалобу": "Describe the complaint",
  "Мои задачи по жалобам": "My complaint tasks",
  "Задач нет": "No tasks",
  "Просроченные задачи по жалобам": "Overdue complaint tasks",
  "Просроченных задач нет": "No overdue tasks",
  "Жалобы": "Complaints",
  "Показать": "Show",
  "Скрыть": "Hide",
  "Обновить": "Refresh",
  "Скачать CSV": "Download CSV",
  "просрочено": "overdue",
  "до {when}": "due {when}",
  "без срока": "no deadline",
  "Исполнитель": "Assignee",
  "Этап": "Stage",
  "Статус": "Status",
  "Срок": "Deadline",
  "Номер": "Number",
  "Зарегистрирована": "Registered",
  "В работе": "In progress",
  "Клиент удовлетворён": "Client satisfied",
  "Клиент не удовлетворён": "Client not satisfied",
  "все статусы": "every status",
  "все этапы": "every stage",
  "все типы": "every type",
  "все ответственные": "everyone responsible",
  "только просроченные": "overdue only",
  "с": "from",
  "по": "to",
  "Ничего не найдено": "Nothing found",
  "показано {shown} из {total}": "{shown} of {total} shown",
  "Загрузка…": "Loading…",
  "Переназначить": "Reassign",
  "Кому": "To whom",
  "Причина (отпуск, болезнь…)": "Reason (holiday, sick leave…)",
  "Только текущую задачу": "Only the current task",
  "Жалоба {number} переназначена": "Complaint {number} reassigned",
  "Новая задача по жалобе {number}: {stage}": "New task on complaint {number}: {stage}",
  "Просрочена задача по жалобе {number}": "A task on complaint {number} is overdue",
  "Жалоба {number}": "Complaint {number}",
  "Данные жалобы": "The complaint",
  "Поля этапа": "The stage's fields",
  "Сохранить": "Save",
  "Сохранено": "Saved",
  "Следующий этап": "Next stage",
  "Закрыть жалобу": "Close the complaint",
  "Передать этап": "Hand the stage to",
  "ответственному": "the responsible",
  "Вернуть на предыдущий этап": "Back to the previous stage",
  "Причина возврата": "Why back",
  "Вернуть": "Back",
  "Укажите причину": "Give the reason",
  "Чтобы перейти дальше, заполните:": "To move on, fill in:",
  "Обязательно для этого этапа": "Required for this stage",
  "да": "yes",
  "нет": "no",
  "удовлетворён": "satisfied",
  "не удовлетворён": "not satisfied",
  "русский": "Russian",
  "английский": "English",
  "План мероприятий": "Action plan",
  "Когда": "When",
  "Что": "What",
  "Кто": "Who",
  "Результат": "Result",
  "Часы": "Hours",
  "Добавить строку": "Add a row",
  "Изменить": "Edit",
  "Удалить": "Remove",
  "Плана пока нет": "No plan yet",
  "Файлы": "Files",
  "Файлов нет": "No files",
  "{n} КБ": "{n} KB",
  "Прикрепить файл": "Attach a file",
  "Загружается {name}: {percent}%": "Uploading {name}: {percent}%",
  "Файл «{name}» прикреплён": "File “{name}” attached",
  "Файл больше {mb} МБ": "The file is larger than {mb} MB",
  "История": "History",
  "Вопрос коллеге": "Ask a colleague",
  "Кого спросить": "Whom to ask",
  "Вопрос": "Question",
  "Спросить": "Ask",
  "Ответ": "Answer",
  "Ответить": "Answer",
  "Вопрос задан: {who}": "The question is with {who}",
  "Ответственный: {who}": "Responsible: {who}",
  "Исполнитель этапа: {who}": "Stage assignee: {who}",
  "Срок этапа: {when}": "Stage deadline: {when}",
  "Зарегистрировал(а): {who}, {when}": "Registered by {who}, {when}",
  "Жалоба изменена другим пользователем: показана как есть": "Someone else changed the complaint: shown as it is now",
  "зарегистрирована": "registered",
  "изменено": "edited",
  "переход этапа": "stage changed",
  "возврат этапа": "stage sent back",
  "вопрос коллеге": "question to a colleague",
  "ответ": "answer",
  "переназначена": "reassigned",
  "строка плана добавлена": "plan row added",
  "строка плана изменена": "plan row edited",
  "строка плана удалена": "plan row removed",
  "файл прикреплён": "file attached",
  "просрочена": "overdue",
  "письмо": "e-mail",
  "изменение": "change",
  "из звонка": "from a call",
  "вручную": "by hand",
  "по API": "through the API",
  "Звонки": "Calls",
  "Только просмотр": "Read only",
  "Решение отправлено: {to}": "Decision sent to {to}",
  "не указано": "not given",
});

/** The JSON API (ui_bridge/routes/complaints.py, routes in ui_bridge/http.py). */
const API = {
  list: "/api/complaints",
  options: "/api/complaints/options",
  fromCall: "/api/complaints/from-call",
  tasks: "/api/complaints/tasks",
  overdue: "/api/complaints/overdue",
  one: (id) => `/api/complaints/${id}`,
  edit: (id) => `/api/complaints/${id}/edit`,
  move: (id) => `/api/complaints/${id}/move`,
  handOver: (id) => `/api/complaints/${id}/hand-over`,
  answer: (id) => `/api/complaints/${id}/answer`,
  reassign: (id) => `/api/complaints/${id}/reassign`,
  plan: (id) => `/api/complaints/${id}/plan`,
  planRow: (id, row) => `/api/complaints/${id}/plan/${row}`,
  attachments: (id) => `/api/complaints/${id}/attachments`,
};

/** How often deadlines are looked at again (a task's deadline may pass between two messages). */
const RECHECK_MS = 10_000;

const STATUS_WORDS = {
  registered: T("Зарегистрирована"), in_progress: T("В работе"), satisfied: T("Клиент удовлетворён"),
  not_satisfied: T("Клиент не удовлетворён"),
};
const SOURCE_WORDS = { call: T("из звонка"), panel: T("вручную"), api: T("по API") };
const HISTORY_WORDS = {
  registered: T("зарегистрирована"), edited: T("изменено"), moved: T("переход этапа"), handed_over: T("вопрос коллеге"),
  answered: T("ответ"), reassigned: T("переназначена"), plan_added: T("строка плана добавлена"),
  plan_edited: T("строка плана изменена"), plan_removed: T("строка плана удалена"), attached: T("файл прикреплён"),
  escalated: T("просрочена"), mailed: T("письмо"),
};

/** A configured item's title in the panel's language ({title, title_en}). */
function titled(item) {
  if (!item) return "";
  return (lang === "en" && item.title_en) || item.title || item.key || item.name || "";
}

function same(a, b) {
  return Boolean(a && b && String(a).toLowerCase() === String(b).toLowerCase());
}

// -- requests ------------------------------------------------------------------------------------------------------

/** A refusal of the API: ``words`` is the server's sentence in the panel's language (util.js errorText shows it),
 * ``fields`` what a stage still needs, ``field`` the value refused, ``complaint`` the complaint as it is now (409). */
class Refusal extends Error {
  constructor(status, error) {
    const e = error && typeof error === "object" ? error : {};
    super(e.message_en || e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || (status ? `http_${status}` : "disconnected");
    const words = lang === "en" ? e.message_en || e.message : e.message_ru || e.message;
    if (words) this.words = words;
    this.fields = Array.isArray(e.fields) ? e.fields : [];
    this.field = typeof e.field === "string" ? e.field : null;
    this.complaint = e.complaint || null;
  }
}

function refusalOf(status, data) {
  return new Refusal(status, data && data.error);
}

/** The JSON API (net.js api()), its refusals as a Refusal with everything the server said. */
async function call(path, options = {}) {
  try {
    return await api(path, options);
  } catch (err) {
    if (err instanceof ApiError) throw new Refusal(err.status, { ...err.details, code: err.code, message: err.message });
    throw err;
  }
}

/** A file sent as multipart (the field ``file``), with its progress (0..1) told as it goes. */
function upload(path, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.withCredentials = true;
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); });
    xhr.addEventListener("load", () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(refusalOf(xhr.status, data));
    });
    xhr.addEventListener("error", () => reject(new Refusal(0, { code: "disconnected", message: "the upload failed" })));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

/** Run ``action`` with ``button`` disabled meanwhile; a refusal goes to ``onRefusal`` (else a toast). */
async function run(button, action, onRefusal = null) {
  if (button) button.disabled = true;
  try {
    return await action();
  } catch (err) {
    if (!(onRefusal && onRefusal(err))) errorToast(err);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

// -- small parts ---------------------------------------------------------------------------------------------------

function field(labelText, control, name, extra = null) {
  return h("label", { class: "cmp-field", "data-field": name },
    h("span", { class: "cmp-label" }, labelText), control, extra,
    h("span", { class: "cmp-error", "data-test": "complaint-field-error", "data-field": name, hidden: true }));
}

function select(name, options, value, props = {}) {
  return h("select", { name, "data-test": `complaint-field-${name}`, ...props },
    options.map(([v, text]) => h("option", { value: v, selected: String(v) === String(value ?? "") || null }, text)));
}

/** Show refused fields: the message next to each field named (``names``), the first one focused. */
function showErrors(root, problems) {
  for (const el of root.querySelectorAll(".cmp-error")) {
    el.hidden = true;
    el.textContent = "";
  }
  for (const el of root.querySelectorAll(".cmp-field-refused")) el.classList.remove("cmp-field-refused");
  let first = null;
  let shown = 0;
  for (const [names, words] of problems) {
    const spot = names.map((n) => root.querySelector(`.cmp-error[data-field="${CSS.escape(n)}"]`)).find(Boolean);
    if (!spot) continue;
    spot.textContent = words;
    spot.hidden = false;
    spot.parentElement.classList.add("cmp-field-refused");
    shown += 1;
    if (!first) first = spot.parentElement.querySelector("input, select, textarea, button");
  }
  if (first) first.focus();
  return shown;
}

/** The problems a refusal names: [[field names], words] for each missing requirement or the one value refused. */
function problemsOf(err) {
  if (err.code === "missing_fields") {
    return err.fields.map((r) => [[...(r.fields && r.fields.length ? r.fields : []), r.name], titled(r)]);
  }
  if (err.code === "invalid_value" && err.field) return [[[err.field], err.words || errorText(err)]];
  return [];
}

function deadlineText(info) {
  return info.due ? T("до {when}", { when: fmtShortDateTime(info.due) }) : T("без срока");
}

// -- the shared state ------------------------------------------------------------------------------------------------

/**
 * What the panel knows about complaints: the vocabulary of the forms (GET /api/complaints/options, once), and the
 * views this user has. ``panel.js`` makes one per page (``ctx.complaints``) and hands it every message.
 */
export class ComplaintsDesk {
  constructor(ctx) {
    this.ctx = ctx;
    this.options = null;
    this.optionsLoading = null;
    this.register = new RegisterDialog(this);
    this.card = new CardDialog(this);
    this.reassignDialog = new ReassignDialog(this);
    this.tasks = null;
    this.overdue = null;
    this.list = null;
  }

  get me() {
    return this.ctx.store.me || {};
  }

  /** A manager: an admin, or a user named in ``[complaints] managers``. */
  get manager() {
    return this.me.role === "admin" || Boolean(this.options && (this.options.managers || []).some((n) => same(n, this.me.name)));
  }

  async loadOptions() {
    if (this.options) return this.options;
    if (!this.optionsLoading) {
      this.optionsLoading = call(API.options).then((data) => { this.options = data; return data; })
        .finally(() => { this.optionsLoading = null; });
    }
    return this.optionsLoading;
  }

  person(name) {
    const found = this.options && (this.options.people || []).find((p) => same(p.name, name));
    return found ? found.shown : name || "";
  }

  stageTitle(stage) {
    const found = this.options && (this.options.stages || []).find((s) => s.key === stage);
    return found ? titled(found) : stage;
  }

  fieldSpec(name) {
    return this.options && (this.options.fields || []).find((f) => f.name === name);
  }

  /** Put this user's complaint views in their view (panel.js calls it once the view is built). */
  mount(view) {
    const role = this.me.role;
    if (["agent", "employee", "admin"].includes(role)) this.tasks = new TasksPanel(this, "mine");
    if (role !== "integration") this.list = new ComplaintList(this);
    if (role === "agent" && view.reminders) {
      view.reminders.el.after(this.tasks.el);
      view.el.querySelector(".agent-main").append(this.list.el);
    } else if (role === "admin" && view.overdue) {
      this.overdue = new TasksPanel(this, "overdue");
      view.overdue.el.after(this.overdue.el, this.tasks.el);
      view.reports.el.parentElement.before(h("div", { class: "admin-wide" }, this.list.el));
    } else {
      if (this.tasks) view.el.append(this.tasks.el);
      view.el.append(this.list.el);
    }
    document.body.append(this.register.el, this.card.el, this.reassignDialog.el);
    this.loadOptions().then(() => {
      if (this.manager && !this.overdue && this.tasks) { // a manager named in [complaints]: their overdue list too
        this.overdue = new TasksPanel(this, "overdue");
        this.tasks.el.before(this.overdue.el);
      }
      if (this.overdue) this.overdue.load();
      if (this.list) this.list.options();
    }).catch(() => {});
    if (this.tasks) this.tasks.load();
  }

  onMessage(msg) {
    if (msg.type === "hello") {
      if (this.ctx.reconnected) { // what changed while the socket was down
        if (this.tasks) this.tasks.load();
        if (this.overdue) this.overdue.load();
        if (this.list) this.list.refreshSoon();
      }
      return;
    }
    if (!msg.type || !msg.type.startsWith("complaint.") || !msg.complaint) return;
    const c = msg.complaint;
    if (this.tasks) this.tasks.onMessage(msg);
    if (this.overdue) this.overdue.onMessage(msg);
    if (this.list) this.list.onMessage(msg);
    this.card.onMessage(msg);
    // A new task of one's own is told, unless its card is open here (the user has just made it, or watches it).
    if (msg.type === "complaint.task" && same(msg.task.assignee, this.me.name) && this.card.id !== c.id) {
      toast(T("Новая задача по жалобе {number}: {stage}", { number: c.number, stage: this.stageTitle(msg.task.stage) }));
    }
    if (msg.type === "complaint.overdue" && this.overdue) {
      toast(T("Просрочена задача по жалобе {number}", { number: c.number }), "error");
    }
  }

  /** Whether a server time (ISO) has passed, by this browser's clock corrected to the server's. */
  passed(iso) {
    const at = Date.parse(iso || "");
    return !Number.isNaN(at) && at <= Date.now() + (this.ctx.store.serverOffsetMs || 0); // store.js: from hello
  }

  /** The registration form for the call ``call`` (the pop's, or the script's run: {pbx, linkedid, …}). */
  fromCall(callInfo, extra = {}) {
    return this.register.open({ call: callInfo, ...extra });
  }

  open(id) {
    return this.card.open(id);
  }
}

// -- registration ----------------------------------------------------------------------------------------------------

/** The registration form: from a call (the client and car filled in), or by hand. One dialog per page. */
class RegisterDialog {
  constructor(desk) {
    this.desk = desk;
    this.el = h("dialog", { class: "dialog cmp-dialog cmp-register", "data-test": "complaint-register" });
    this.el.addEventListener("close", () => { this.call = null; });
  }

  async open({ call: callInfo = null, comment = "" } = {}) {
    let options;
    try {
      options = await this.desk.loadOptions();
    } catch (err) {
      errorToast(err);
      return;
    }
    this.call = callInfo;
    const local = callInfo ? this.localPrefill(callInfo) : {};
    this.build(options, { ...local, comment });
    if (!this.el.open) this.el.showModal();
    this.refs.type.focus();
    if (callInfo && callInfo.linkedid) {
      // What the server knows of the call (the directory's contact, the journal's caller): fills what is still empty.
      try {
        const prefill = await call(`${API.fromCall}${query({ pbx: callInfo.pbx, linkedid: callInfo.linkedid })}`);
        if (this.call === callInfo) this.fill(prefill);
      } catch {
        /* the form keeps what the panel knew: the server fills in the rest at registration */
      }
    }
  }

  /** What the panel itself knows of the call: the caller's number, the card's name and first car. */
  localPrefill(info) {
    const live = this.desk.ctx.store.calls.get(callKey(info)) || info;
    const card = live.card || {};
    const contact = (card.contacts || [])[0] || null;
    const car = contact && (contact.vehicles || [])[0];
    const outbound = live.direction === "outbound";
    return {
      client_phone: (outbound ? live.called : live.caller) || info.caller || "",
      client_name: card.name || (contact && contact.name) || (outbound ? "" : live.caller_name) || "",
      client_email: (contact && contact.email) || "",
      car: car ? [car.make, car.model].filter(Boolean).join(" ") : "",
      plate: (car && car.plate) || "",
      shown: outbound ? shownNumber(live, "called") : shownNumber(live, "caller"),
    };
  }

  fill(prefill) {
    this.contactId = prefill.contact_id || null;
    for (const name of ["client_name", "client_phone", "client_email", "car", "plate"]) {
      const el = this.refs[name];
      if (el && !el.value && !el.dataset.touched && prefill[name]) el.value = prefill[name];
    }
  }

  build(options, values) {
    const r = (this.refs = {});
    this.contactId = null;
    const input = (name, props = {}) => {
      const el = h(props.multiline ? "textarea" : "input", {
        name, "data-test": `complaint-field-${name}`, autocomplete: "off", value: values[name] || "",
        ...(props.multiline ? { rows: 4, maxlength: 4000 } : { type: props.type || "text", maxlength: props.max || 200 }),
        oninput: (e) => { e.currentTarget.dataset.touched = "1"; },
      });
      r[name] = el;
      return el;
    };
    r.type = select("type", [["", T("— выберите —")], ...options.types.map((t) => [t.key, titled(t)])], "", { required: true });
    r.kind = select("kind", [["client", T("от клиента")], ["supplier", T("наша поставщику")]], "client");
    r.subject_kind = select("subject_kind", [["", "—"], ...options.subject_kinds.map((k) => [k.key, titled(k)])], "");
    r.responsible = select("responsible", [["", T("по умолчанию")],
      ...(options.people || []).map((p) => [p.name, p.shown])], "");
    const submit = h("button", { type: "submit", class: "btn btn-primary", "data-test": "complaint-register-submit" },
      T("Зарегистрировать"));
    const cancel = h("button", { type: "button", class: "btn", "data-test": "complaint-register-cancel",
      onclick: () => this.el.close() }, T("Отмена"));
    const form = h("form", { method: "dialog", class: "cmp-form", onsubmit: (e) => { e.preventDefault(); this.submit(submit); } },
      h("h3", {}, T("Новая жалоба")),
      values.shown ? h("p", { class: "muted", "data-test": "complaint-register-call" }, T("Звонок: {number}", { number: values.shown })) : null,
      h("div", { class: "cmp-grid" },
        field(T("Тип"), r.type, "type"),
        field(T("Вид"), r.kind, "kind"),
        field(T("Имя клиента"), input("client_name"), "client_name"),
        field(T("Телефон"), input("client_phone", { type: "tel", max: 40 }), "client_phone"),
        field(T("Эл. почта"), input("client_email", { type: "email" }), "client_email"),
        field(T("Автомобиль"), input("car"), "car"),
        field(T("Госномер"), input("plate", { max: 20 }), "plate"),
        field(T("Вид предмета"), r.subject_kind, "subject_kind"),
        field(T("Предмет"), input("subject"), "subject"),
        field(T("Ответственный"), r.responsible, "responsible")),
      field(T("Суть жалобы"), input("comment", { multiline: true }), "comment"),
      h("div", { class: "dialog-actions" }, cancel, submit));
    this.el.replaceChildren(form);
  }

  async submit(button) {
    const r = this.refs;
    const problems = [];
    if (!r.type.value) problems.push([["type"], T("Выберите тип жалобы")]);
    if (!r.comment.value.trim() && !r.subject.value.trim()) problems.push([["comment"], T("Опишите жалобу")]);
    if (problems.length) {
      showErrors(this.el, problems);
      return;
    }
    const body = { type: r.type.value, kind: r.kind.value };
    for (const name of ["client_name", "client_phone", "client_email", "car", "plate", "subject_kind", "subject", "comment",
      "responsible"]) {
      const value = r[name].value.trim();
      if (value) body[name] = value;
    }
    if (this.contactId) body.contact_id = this.contactId;
    if (this.call && this.call.linkedid) {
      body.linkedid = this.call.linkedid;
      if (this.call.pbx) body.pbx = this.call.pbx;
    }
    const done = await run(button, () => call(API.list, { method: "POST", body }),
      (err) => showErrors(this.el, problemsOf(err)) > 0);
    if (!done) return;
    const c = done.complaint;
    this.el.close();
    toast(T("Жалоба {number} зарегистрирована", { number: c.number }));
    if (this.desk.list) this.desk.list.upsert(c);
  }
}

// -- tasks: mine, and the managers' overdue list ------------------------------------------------------------------------

/** «Мои задачи по жалобам» (``mine``: the open tasks given to this user) or the managers' overdue list
 * (``overdue``: every open task past its deadline, with reassignment). One row per complaint: a complaint has one
 * open task at a time. */
class TasksPanel {
  constructor(desk, mode) {
    this.desk = desk;
    this.mode = mode;
    this.items = new Map(); // complaint id -> {task, complaint}
    this.count = h("span", { class: "count count-alert", "data-test": `complaint-${mode}-count` });
    this.status = h("span", { class: "muted" });
    this.list = h("ul", { class: "cmp-tasks", "data-test": `complaint-${mode}-list` });
    const title = mode === "overdue" ? T("Просроченные задачи по жалобам") : T("Мои задачи по жалобам");
    this.el = h("section", { class: `panel cmp-tasks-panel cmp-${mode}`, "data-test": `complaint-${mode}` },
      h("div", { class: "panel-head" }, h("h2", {}, title), this.count, this.status), this.list);
    this.timer = setInterval(() => this.render(), RECHECK_MS);
    this.pushed = new PushedWhileLoading(); // the complaints pushed while load() reads the list
    this.render();
  }

  async load() {
    setText(this.status, T("Загрузка…"));
    const pushed = this.pushed.begin();
    try {
      const data = await call(this.mode === "overdue" ? API.overdue : API.tasks);
      const fresh = new Map((data.tasks || []).map((t) => [t.complaint_id, { task: t, complaint: t.complaint }]));
      for (const id of pushed) { // a push that came while the list was read is newer than the list
        if (this.items.has(id)) fresh.set(id, this.items.get(id));
        else fresh.delete(id);
      }
      this.items = fresh;
      setText(this.status, "");
    } catch (err) {
      setText(this.status, errorText(err));
    } finally {
      this.pushed.end(pushed);
    }
    this.render();
  }

  onMessage(msg) {
    const c = msg.complaint;
    this.pushed.touch(c.id);
    const me = this.desk.me.name;
    const held = this.items.get(c.id);
    if (msg.type === "complaint.task" && this.mode === "mine") {
      if (same(msg.task.assignee, me) && msg.task.state === "open") this.items.set(c.id, { task: msg.task, complaint: c });
    } else if (msg.type === "complaint.overdue" && this.mode === "overdue") {
      this.items.set(c.id, { task: msg.task, complaint: c });
    } else if (held) {
      const gone = c.stage === "closed" || c.stage !== held.task.stage
        || (this.mode === "mine" && !same(c.assignee, me)) || (this.mode === "overdue" && !c.overdue);
      if (gone) this.items.delete(c.id);
      else this.items.set(c.id, { task: { ...held.task, assignee: c.assignee }, complaint: c });
    }
    this.render();
  }

  overdue(item) {
    return Boolean(item.task.overdue || item.complaint.overdue) || this.desk.passed(item.task.due_at);
  }

  row(item) {
    const { task, complaint: c } = item;
    const late = this.overdue(item);
    const open = h("button", { type: "button", class: "btn btn-small btn-link", "data-test": "complaint-open",
      onclick: () => this.desk.open(c.id) }, c.number);
    const reassign = this.mode === "overdue"
      ? h("button", { type: "button", class: "btn btn-small", "data-test": "complaint-reassign",
        onclick: () => this.desk.reassignDialog.open(c) }, T("Переназначить"))
      : null;
    return h("li", { class: `cmp-task${late ? " cmp-late" : ""}`, "data-test": "complaint-task", "data-id": task.id,
      "data-complaint": c.id, "data-number": c.number, "data-overdue": String(late), "data-assignee": task.assignee },
    h("div", { class: "cmp-task-head" }, open,
      h("span", { class: "chip chip-small" }, c.type_title),
      h("span", { class: "cmp-stage", "data-test": "complaint-task-stage" }, this.desk.stageTitle(task.stage)),
      h("span", { class: "spacer" }),
      h("span", { class: `cmp-due${late ? " cmp-late-text" : ""}`, "data-test": "complaint-task-due" },
        deadlineText({ due: task.due_at })),
      late ? h("span", { class: "chip chip-small chip-late", "data-test": "complaint-task-late" }, T("просрочено")) : null),
    h("div", { class: "cmp-task-client" }, c.client_name || shownNumber(c, "client_phone") || T("не указано"),
      c.car || c.plate ? h("span", { class: "sub" }, ` · ${[c.car, c.plate].filter(Boolean).join(" ")}`) : null),
    c.comment ? h("div", { class: "sub cmp-clip" }, c.comment) : null,
    this.mode === "overdue"
      ? h("div", { class: "cmp-task-who" },
        h("span", { "data-test": "complaint-task-assignee" }, T("Исполнитель этапа: {who}", { who: this.desk.person(task.assignee) })),
        reassign)
      : null);
  }

  render() {
    const items = [...this.items.values()].sort((a, b) =>
      String(a.task.due_at || "9999").localeCompare(String(b.task.due_at || "9999")) || a.task.id - b.task.id);
    setText(this.count, items.length ? String(items.length) : "");
    this.el.dataset.count = String(items.length);
    clear(this.list);
    if (!items.length) {
      this.list.append(h("li", { class: "muted cmp-empty" }, this.mode === "overdue" ? T("Просроченных задач нет") : T("Задач нет")));
    }
    for (const item of items) this.list.append(this.row(item));
  }
}

/** A manager gives a complaint (or only its current task) to someone else, with the reason (kept in the history). */
class ReassignDialog {
  constructor(desk) {
    this.desk = desk;
    this.el = h("dialog", { class: "dialog cmp-dialog", "data-test": "complaint-reassign-dialog" });
  }

  async open(c) {
    const options = await this.desk.loadOptions().catch((err) => { errorToast(err); return null; });
    if (!options) return;
    this.complaint = c;
    const to = select("to", [["", T("— выберите —")], ...(options.people || [])
      .filter((p) => !same(p.name, c.assignee)).map((p) => [p.name, p.shown])], "");
    to.dataset.test = "complaint-reassign-to";
    const reason = h("input", { type: "text", name: "reason", maxlength: 4000, "data-test": "complaint-reassign-reason",
      placeholder: T("Причина (отпуск, болезнь…)"), autocomplete: "off" });
    const taskOnly = h("input", { type: "checkbox", name: "task_only", "data-test": "complaint-reassign-task-only" });
    const submit = h("button", { type: "submit", class: "btn btn-primary", "data-test": "complaint-reassign-submit" },
      T("Переназначить"));
    const form = h("form", { method: "dialog", class: "cmp-form", onsubmit: async (e) => {
      e.preventDefault();
      const problems = [];
      if (!to.value) problems.push([["to"], T("Выберите, кому")]);
      if (!reason.value.trim()) problems.push([["reason"], T("Укажите причину")]);
      if (problems.length) {
        showErrors(this.el, problems);
        return;
      }
      const done = await run(submit, () => call(API.reassign(c.id), { method: "POST",
        body: { revision: c.revision, to: to.value, reason: reason.value.trim(), task_only: taskOnly.checked } }),
      (err) => this.refused(err));
      if (!done) return;
      this.el.close();
      toast(T("Жалоба {number} переназначена", { number: done.complaint.number }));
      this.desk.card.onMessage({ type: "complaint.changed", complaint: done.complaint });
    } },
    h("h3", {}, T("Переназначить"), " ", c.number),
    h("p", { class: "muted" }, T("Ответственный: {who}", { who: this.desk.person(c.responsible) }), " · ",
      T("Исполнитель этапа: {who}", { who: this.desk.person(c.assignee) })),
    field(T("Кому"), to, "to"),
    field(T("Причина (отпуск, болезнь…)"), reason, "reason"),
    h("label", { class: "cmp-check" }, taskOnly, T("Только текущую задачу")),
    h("div", { class: "dialog-actions" },
      h("button", { type: "button", class: "btn", onclick: () => this.el.close() }, T("Отмена")), submit));
    this.el.replaceChildren(form);
    if (!this.el.open) this.el.showModal();
    to.focus();
  }

  refused(err) {
    if (err.code === "changed" && err.complaint) { // changed meanwhile: the dialog again, on the complaint as it is
      toast(T("Жалоба изменена другим пользователем: показана как есть"), "error");
      this.open(err.complaint);
      return true;
    }
    const problems = err.code === "invalid_value" ? [[[err.field === "responsible" || err.field === "assignee" ? "to" : err.field],
      err.words || errorText(err)]] : [];
    return showErrors(this.el, problems) > 0;
  }
}

// -- the list --------------------------------------------------------------------------------------------------------

function isoDate(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

/** The list with its filters (status, stage, type, responsible, overdue, period) and the CSV of the same; opened on
 * demand. A non-manager's list is what they are responsible for (the server says so). */
class ComplaintList {
  constructor(desk) {
    this.desk = desk;
    this.shown = new Map(); // id -> ComplaintInfo
    this.total = 0;
    const today = new Date();
    this.status = select("status", [["", T("все статусы")], ...Object.entries(STATUS_WORDS)], "");
    this.stage = select("stage", [["", T("все этапы")]], "");
    this.type = select("type", [["", T("все типы")]], "");
    this.responsible = select("responsible", [["", T("все ответственные")]], "");
    for (const [el, name] of [[this.status, "status"], [this.stage, "stage"], [this.type, "type"], [this.responsible, "responsible"]]) {
      el.dataset.test = `complaints-filter-${name}`;
    }
    this.late = h("input", { type: "checkbox", "data-test": "complaints-filter-overdue" });
    this.since = h("input", { type: "date", "data-test": "complaints-filter-since", "aria-label": T("с"),
      value: isoDate(new Date(today.getFullYear(), today.getMonth() - 3, today.getDate())) });
    this.until = h("input", { type: "date", "data-test": "complaints-filter-until", "aria-label": T("по"), value: isoDate(today) });
    this.csv = h("a", { class: "btn btn-small", "data-test": "complaints-csv", download: "complaints.csv" }, T("Скачать CSV"));
    const show = h("button", { type: "submit", class: "btn btn-small btn-primary", "data-test": "complaints-show" }, T("Обновить"));
    const add = desk.me.role === "qa" ? null : h("button", { type: "button", class: "btn btn-small", "data-test": "complaint-new",
      onclick: () => this.desk.register.open() }, T("Новая жалоба")); // QA reads complaints, files none
    this.body = h("tbody");
    this.note = h("span", { class: "muted", "data-test": "complaints-note" });
    this.toggle = h("button", { type: "button", class: "btn btn-small", "data-test": "complaints-toggle" }, T("Показать"));
    this.report = new ComplaintsReport(desk); // «Отчёт»: the report over a period (complaints_report.js)
    this.content = h("div", { class: "cmp-list-content", hidden: true },
      h("form", { class: "cmp-filters", onsubmit: (e) => { e.preventDefault(); this.load(); } },
        this.status, this.stage, this.type, this.responsible,
        h("label", { class: "cmp-check" }, this.late, T("только просроченные")),
        h("label", {}, T("с"), " ", this.since), h("label", {}, T("по"), " ", this.until), show, this.csv,
        h("span", { class: "spacer" }), add),
      h("div", { class: "table-wrap" }, h("table", { class: "table cmp-table", "data-test": "complaints-table" },
        h("thead", {}, h("tr", {}, [T("Номер"), T("Тип"), T("Клиент"), T("Этап"), T("Статус"), T("Ответственный"),
          T("Исполнитель"), T("Срок")].map((t) => h("th", {}, t)))), this.body)),
      this.note);
    this.toggle.addEventListener("click", () => {
      this.content.hidden = !this.content.hidden;
      setText(this.toggle, this.content.hidden ? T("Показать") : T("Скрыть"));
      if (!this.content.hidden) this.load();
    });
    this.el = h("section", { class: "panel cmp-list", "data-test": "complaints" },
      h("div", { class: "panel-head" }, h("h2", {}, T("Жалобы")), this.report.toggle, this.toggle), this.content,
      this.report.el);
    this.updateCsv();
    for (const el of [this.status, this.stage, this.type, this.responsible, this.late, this.since, this.until]) {
      el.addEventListener("change", () => this.updateCsv());
    }
  }

  /** The filters' choices, once the vocabulary is known. */
  options() {
    const o = this.desk.options;
    this.stage.append(...(o.stages || []).map((s) => h("option", { value: s.key }, titled(s))));
    this.type.append(...(o.types || []).map((t) => h("option", { value: t.key }, titled(t))));
    this.responsible.append(...(o.people || []).map((p) => h("option", { value: p.name }, p.shown)));
    this.responsible.hidden = !this.desk.manager && this.desk.me.role !== "qa";
  }

  params() {
    const until = this.until.value ? new Date(`${this.until.value}T00:00:00`) : null;
    if (until) until.setDate(until.getDate() + 1); // the whole last day
    return { status: this.status.value, stage: this.stage.value, type: this.type.value,
      responsible: this.responsible.hidden ? "" : this.responsible.value, overdue: this.late.checked ? 1 : "",
      since: this.since.value, until: until ? isoDate(until) : "" };
  }

  updateCsv() {
    this.csv.href = `${API.list}${query({ ...this.params(), format: "csv", limit: 1000 })}`;
  }

  async load() {
    this.updateCsv();
    setText(this.note, T("Загрузка…"));
    try {
      const data = await call(`${API.list}${query(this.params())}`);
      this.shown = new Map((data.complaints || []).map((c) => [c.id, c]));
      this.total = data.total || 0;
      setText(this.note, this.shown.size < this.total ? T("показано {shown} из {total}", { shown: this.shown.size, total: this.total }) : "");
    } catch (err) {
      setText(this.note, errorText(err));
    }
    this.render();
  }

  refreshSoon() {
    if (this.content.hidden) return;
    clearTimeout(this.soon);
    this.soon = setTimeout(() => this.load(), 500);
  }

  upsert(c) {
    if (this.content.hidden) return;
    if (this.shown.has(c.id)) {
      this.shown.set(c.id, c);
      this.render();
    } else {
      this.refreshSoon(); // new: the filters decide whether it belongs here
    }
  }

  onMessage(msg) {
    this.upsert(msg.complaint);
  }

  render() {
    clear(this.body);
    const rows = [...this.shown.values()].sort((a, b) => b.id - a.id);
    if (!rows.length) this.body.append(h("tr", { class: "empty" }, h("td", { colspan: 8 }, T("Ничего не найдено"))));
    for (const c of rows) {
      const late = c.overdue || (c.stage !== "closed" && this.desk.passed(c.stage_due_at));
      this.body.append(h("tr", { "data-test": "complaint-row", "data-id": c.id, "data-number": c.number,
        "data-overdue": String(late), class: late ? "cmp-late" : null },
      h("td", {}, h("button", { type: "button", class: "btn btn-small btn-link", "data-test": "complaint-open",
        onclick: () => this.desk.open(c.id) }, c.number), h("div", { class: "sub" }, fmtShortDateTime(c.created_at))),
      h("td", {}, c.type_title),
      h("td", {}, h("div", {}, c.client_name || shownNumber(c, "client_phone") || "—"),
        c.car || c.plate ? h("div", { class: "sub" }, [c.car, c.plate].filter(Boolean).join(" ")) : null),
      h("td", {}, this.desk.stageTitle(c.stage)),
      h("td", {}, STATUS_WORDS[c.status] || ""),
      h("td", {}, this.desk.person(c.responsible)),
      h("td", {}, this.desk.person(c.assignee)),
      h("td", { class: late ? "cmp-late-text nowrap" : "nowrap" }, c.stage === "closed" ? "" : deadlineText({ due: c.stage_due_at }))));
    }
  }
}

// -- the card ----------------------------------------------------------------------------------------------------------

/** The complaint's card: everything about it, and what this user may do now (the server's ``may``). */
class CardDialog {
  constructor(desk) {
    this.desk = desk;
    this.data = null;
    this.el = h("dialog", { class: "dialog cmp-dialog cmp-card", "data-test": "complaint-card" });
    this.el.addEventListener("close", () => { this.data = null; });
  }

  get id() {
    return this.data ? this.data.complaint.id : null;
  }

  async open(id) {
    try {
      await this.desk.loadOptions();
      this.data = await call(API.one(id));
    } catch (err) {
      errorToast(err);
      return;
    }
    this.shownJson = null;
    this.render();
    if (!this.el.open) this.el.showModal();
  }

  /** The card again from the server; what the user typed and has not saved yet stays in its fields (read when the
   * answer is shown, not when it was asked for: typing goes on meanwhile). An answer older than the card shown (two
   * reloads crossing) is dropped. */
  async reload() {
    if (this.id === null) return;
    const id = this.id;
    let data;
    try {
      data = await call(API.one(id));
    } catch (err) {
      errorToast(err);
      return;
    }
    if (this.id !== id || data.complaint.revision < this.data.complaint.revision) return;
    const json = JSON.stringify(data);
    if (json === this.shownJson) return; // the same card (a change's reply and its message both asked): as it is
    const kept = this.typed();
    this.data = data;
    this.render(kept);
  }

  onMessage(msg) {
    const c = msg.complaint;
    if (!this.el.open || !this.data || c.id !== this.id || c.revision <= this.data.complaint.revision) return;
    this.reload(); // the history, the tasks and what may be done come with the card
  }

  /** What is typed in the card's forms now (kept when the card is shown again after someone else's change). */
  typed() {
    const out = {};
    for (const el of this.el.querySelectorAll("[data-keep] [name]")) {
      if (el.dataset.touched) out[el.name] = el.type === "checkbox" ? el.checked : el.value;
    }
    if (this.editingRow !== undefined) out.plan_row = this.editingRow; // a plan row being edited stays so
    return out;
  }

  /** Send a change; the card shows the complaint after it, or the refusal next to what it names. */
  async change(button, path, body, { method = "POST", where = this.el, after = null } = {}) {
    const done = await run(button, () => call(path, { method, body: { revision: this.data.complaint.revision, ...body } }),
      (err) => this.refused(err, where));
    if (done && after) after();
    if (done && done.complaint) {
      // The change's own complaint.changed finds the card at this revision already: one reload, this one.
      if (done.complaint.revision > this.data.complaint.revision) this.data = { ...this.data, complaint: done.complaint };
      await this.reload();
    }
    return done;
  }

  refused(err, where) {
    if (err.code === "changed") {
      toast(T("Жалоба изменена другим пользователем: показана как есть"), "error");
      this.reload();
      return true;
    }
    return showErrors(where, problemsOf(err)) > 0;
  }

  render(kept = null) {
    this.shownJson = JSON.stringify(this.data);
    const { complaint: c, history = [], may = {}, missing = [], editable = [] } = this.data;
    const d = this.desk;
    const head = h("div", { class: "cmp-card-head" },
      h("h3", { "data-test": "complaint-card-number" }, T("Жалоба {number}", { number: c.number })),
      h("span", { class: "chip" }, c.type_title),
      h("span", { class: `chip cmp-status cmp-status-${c.status}`, "data-test": "complaint-card-status", "data-status": c.status },
        STATUS_WORDS[c.status] || ""),
      c.overdue ? h("span", { class: "chip chip-late", "data-test": "complaint-card-late" }, T("просрочено")) : null,
      h("span", { class: "spacer" }),
      h("button", { type: "button", class: "btn btn-ghost", "data-test": "complaint-card-close", onclick: () => this.el.close() },
        T("Закрыть")));
    const stages = h("ol", { class: "cmp-stages", "data-test": "complaint-stages" }, (d.options.stages || []).map((s) =>
      h("li", { class: s.key === c.stage ? "cmp-stage-now" : null, "data-stage": s.key }, titled(s))));
    const who = h("div", { class: "cmp-who" },
      h("span", { "data-test": "complaint-card-responsible" }, T("Ответственный: {who}", { who: d.person(c.responsible) })),
      h("span", { "data-test": "complaint-card-assignee" }, T("Исполнитель этапа: {who}", { who: d.person(c.assignee) })),
      c.stage !== "closed"
        ? h("span", { class: c.overdue ? "cmp-late-text" : null, "data-test": "complaint-card-due" },
          T("Срок этапа: {when}", { when: c.stage_due_at ? fmtDateTime(c.stage_due_at) : T("без срока") }))
        : null,
      h("span", { class: "muted" }, T("Зарегистрировал(а): {who}, {when}", { who: d.person(c.created_by), when: fmtDateTime(c.created_at) }),
        " · ", SOURCE_WORDS[c.source] || ""));
    const parts = [head, stages, who];
    parts.push(this.fieldsPart(c, may, missing, editable, kept || {}));
    if (c.stage !== "closed" && may.work) parts.push(this.movePart(c, missing, kept || {}));
    if (c.stage !== "closed" && (may.work || may.answer)) parts.push(this.askPart(c, may, kept || {}));
    if (may.reassign) {
      parts.push(h("div", { class: "cmp-row" }, h("button", { type: "button", class: "btn", "data-test": "complaint-card-reassign",
        onclick: () => d.reassignDialog.open(c) }, T("Переназначить"))));
    }
    parts.push(this.planPart(c, may, kept || {}), this.filesPart(c, may), this.historyPart(history));
    this.el.dataset.stage = c.stage;
    this.el.dataset.revision = String(c.revision);
    this.el.replaceChildren(h("div", { class: "cmp-card-body" }, parts));
  }

  /** A field's control by its kind (``options.fields``), holding ``value``. */
  control(spec, value) {
    const o = this.desk.options;
    const name = spec.name;
    const current = value === null || value === undefined ? "" : value;
    const mark = (el) => { el.addEventListener("input", () => { el.dataset.touched = "1"; }); el.addEventListener("change", () => { el.dataset.touched = "1"; }); return el; };
    if (spec.kind === "type") return mark(select(name, o.types.map((t) => [t.key, titled(t)]), current));
    if (spec.kind === "kind") return mark(select(name, [["client", T("от клиента")], ["supplier", T("наша поставщику")]], current));
    if (spec.kind === "bool") return mark(select(name, [["", "—"], ["true", T("да")], ["false", T("нет")]], current === "" ? "" : String(current)));
    if (spec.kind === "yes_no") return mark(select(name, [["", "—"], ["yes", T("да")], ["no", T("нет")]], current));
    if (spec.kind === "result") {
      return mark(select(name, [["", "—"], ["satisfied", T("удовлетворён")], ["not_satisfied", T("не удовлетворён")]], current));
    }
    if (spec.kind === "language") return mark(select(name, [["", "—"], ["ru", T("русский")], ["en", T("английский")]], current));
    let list = [];
    if (spec.options === "subject_kinds") list = o.subject_kinds.map((k) => [k.key, titled(k)]);
    else if (spec.options === "subjects") list = ((o.subjects || {})[this.data.complaint.subject_kind] || []).map((s) => [s, s]);
    else if (spec.options) list = (o[spec.options] || []).map((s) => [s, s]);
    if (list.length) return mark(select(name, [["", "—"], ...list], current));
    if (spec.kind === "text") {
      return mark(h("textarea", { name, rows: 3, maxlength: 4000, "data-test": `complaint-field-${name}`, value: String(current) }));
    }
    return mark(h("input", { name, type: spec.kind === "email" ? "email" : spec.kind === "phone" ? "tel" : "text",
      maxlength: spec.kind === "phone" ? 40 : 200, "data-test": `complaint-field-${name}`, value: String(current), autocomplete: "off" }));
  }

  fieldsPart(c, may, missing, editable, kept) {
    const d = this.desk;
    const needed = new Set(missing.flatMap((r) => [...(r.fields || []), r.name]));
    const valueOf = (name) => (name in c ? c[name] : (c.fields || {})[name]);
    const shown = (spec, v) => {
      if (v === null || v === undefined || v === "") return "—";
      if (spec.kind === "bool") return v ? T("да") : T("нет");
      if (spec.kind === "yes_no") return v === "yes" ? T("да") : T("нет");
      if (spec.kind === "result") return v === "satisfied" ? T("удовлетворён") : T("не удовлетворён");
      if (spec.kind === "kind") return v === "supplier" ? T("наша поставщику") : T("от клиента");
      if (spec.kind === "type") return c.type_title;
      if (spec.kind === "phone") return shownNumber(c, "client_phone") || v;
      if (spec.options === "subject_kinds") return titled((d.options.subject_kinds || []).find((k) => k.key === v)) || v;
      return String(v);
    };
    const editing = may.work && c.stage !== "closed";
    const can = new Set(editing ? editable : []);
    const own = [];
    const stage = [];
    for (const spec of d.options.fields || []) {
      const value = valueOf(spec.name);
      const here = can.has(spec.name);
      const fromStage = !(spec.stages || []).includes("registration");
      if (!here && (value === null || value === undefined || value === "")) continue;
      let el;
      if (here) {
        el = this.control(spec, spec.name in kept ? kept[spec.name] : value);
        if (spec.name in kept) el.dataset.touched = "1";
      } else {
        el = h("span", { class: "cmp-value", "data-test": `complaint-value-${spec.name}` }, shown(spec, value));
      }
      const row = field(titled(spec), el, spec.name,
        needed.has(spec.name) ? h("span", { class: "cmp-required", title: T("Обязательно для этого этапа") }, "*") : null);
      (fromStage ? stage : own).push(row);
    }
    const save = editing
      ? h("button", { type: "submit", class: "btn", "data-test": "complaint-save" }, T("Сохранить"))
      : null;
    const calls = (c.calls || []).length
      ? h("div", { class: "sub" }, `${T("Звонки")}: `, c.calls.map((x) => x.linkedid).join(", "))
      : null;
    const form = h("form", { class: "cmp-form cmp-fields", "data-keep": "", "data-test": "complaint-fields",
      onsubmit: (e) => { e.preventDefault(); this.save(save); } },
    h("h4", {}, T("Данные жалобы")), h("div", { class: "cmp-grid" }, own), calls,
    stage.length ? h("h4", {}, T("Поля этапа")) : null, stage.length ? h("div", { class: "cmp-grid" }, stage) : null,
    save ? h("div", { class: "cmp-row" }, save) : null,
    !editing ? h("p", { class: "muted" }, T("Только просмотр")) : null);
    this.fieldsForm = form;
    return form;
  }

  /** What the form holds that differs from the complaint: {name: value} as the API takes it. */
  changes() {
    const c = this.data.complaint;
    const out = {};
    if (!this.fieldsForm) return out;
    for (const el of this.fieldsForm.querySelectorAll("[name]")) {
      if (!el.dataset.touched) continue;
      const spec = this.desk.fieldSpec(el.name);
      if (!spec) continue;
      let value = el.value.trim();
      const old = el.name in c ? c[el.name] : (c.fields || {})[el.name];
      if (spec.kind === "bool") value = value === "" ? null : value === "true";
      else if (value === "") value = null;
      if ((old ?? null) === value || (old !== null && old !== undefined && String(old) === String(value))) continue;
      out[el.name] = value;
    }
    return out;
  }

  async save(button, { quiet = false } = {}) {
    const changes = this.changes();
    if (!Object.keys(changes).length) return true;
    const done = await this.change(button, API.edit(this.id), { changes });
    if (done && !quiet) toast(T("Сохранено"));
    return Boolean(done);
  }

  movePart(c, missing, kept) {
    const d = this.desk;
    const last = c.stage === "result";
    const assignee = last ? null : select("assignee", [["", T("ответственному")],
      ...(d.options.people || []).filter((p) => !same(p.name, c.responsible)).map((p) => [p.name, p.shown])], kept.assignee || "");
    if (assignee) assignee.dataset.test = "complaint-move-assignee";
    const next = h("button", { type: "submit", class: "btn btn-primary", "data-test": "complaint-next" },
      last ? T("Закрыть жалобу") : T("Следующий этап"));
    const needs = missing.length
      ? h("div", { class: "cmp-missing", "data-test": "complaint-missing" }, T("Чтобы перейти дальше, заполните:"), " ",
        missing.map((r) => titled(r)).join(", "))
      : null;
    const form = h("form", { class: "cmp-form cmp-move", "data-keep": "", onsubmit: async (e) => {
      e.preventDefault();
      if (!(await this.save(null, { quiet: true }))) return; // what was typed first, then the move
      await this.change(next, API.move(this.id), { to: "next", assignee: assignee && assignee.value ? assignee.value : null },
        { where: this.el });
    } }, needs, h("div", { class: "cmp-row" }, assignee ? h("label", {}, T("Передать этап"), " ", assignee) : null, next));
    const reason = h("input", { type: "text", name: "back_reason", maxlength: 4000, "data-test": "complaint-back-reason",
      placeholder: T("Причина возврата"), autocomplete: "off", value: kept.back_reason || "" });
    const backButton = h("button", { type: "submit", class: "btn", "data-test": "complaint-back" }, T("Вернуть"));
    const back = c.stage !== "registration"
      ? h("details", { class: "cmp-back" }, h("summary", {}, T("Вернуть на предыдущий этап")),
        h("form", { class: "cmp-row", "data-keep": "", onsubmit: (e) => {
          e.preventDefault();
          if (!reason.value.trim()) {
            showErrors(e.currentTarget.parentElement, [[["back_reason"], T("Укажите причину")]]);
            return;
          }
          this.change(backButton, API.move(this.id), { to: "back", reason: reason.value.trim() });
        } }, field(T("Причина возврата"), reason, "back_reason"), backButton))
      : null;
    return h("div", { class: "cmp-section" }, form, back);
  }

  askPart(c, may, kept) {
    const d = this.desk;
    const parts = [];
    const asked = !same(c.assignee, c.responsible);
    if (asked) parts.push(h("p", { class: "muted", "data-test": "complaint-asked" }, T("Вопрос задан: {who}", { who: d.person(c.assignee) })));
    if (may.answer) {
      const text = h("textarea", { name: "answer_text", rows: 2, maxlength: 4000, "data-test": "complaint-answer-text", value: kept.answer_text || "" });
      const button = h("button", { type: "submit", class: "btn btn-primary", "data-test": "complaint-answer" }, T("Ответить"));
      parts.push(h("form", { class: "cmp-form", "data-keep": "", onsubmit: (e) => {
        e.preventDefault();
        if (!text.value.trim()) return;
        this.change(button, API.answer(this.id), { text: text.value.trim() });
      } }, field(T("Ответ"), text, "answer"), button));
    }
    if (may.work && !asked) {
      const to = select("ask_to", [["", T("— выберите —")], ...(d.options.people || [])
        .filter((p) => !same(p.name, c.assignee)).map((p) => [p.name, p.shown])], kept.ask_to || "");
      to.dataset.test = "complaint-ask-to";
      const question = h("textarea", { name: "question", rows: 2, maxlength: 4000, "data-test": "complaint-ask-question", value: kept.question || "" });
      const button = h("button", { type: "submit", class: "btn", "data-test": "complaint-ask" }, T("Спросить"));
      parts.push(h("details", { class: "cmp-ask" }, h("summary", {}, T("Вопрос коллеге")),
        h("form", { class: "cmp-form", "data-keep": "", onsubmit: (e) => {
          e.preventDefault();
          if (!to.value || !question.value.trim()) return;
          this.change(button, API.handOver(this.id), { to: to.value, question: question.value.trim() });
        } }, field(T("Кого спросить"), to, "assignee"), field(T("Вопрос"), question, "question"), button)));
    }
    return h("div", { class: "cmp-section" }, parts);
  }

  planPart(c, may, kept) {
    const editing = may.work && c.stage !== "closed" && c.stage !== "registration";
    const rows = c.action_plan || [];
    const table = h("table", { class: "table cmp-plan", "data-test": "complaint-plan" },
      h("thead", {}, h("tr", {}, [T("Когда"), T("Что"), T("Кто"), T("Результат"), T("Часы"), ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows.length ? rows.map((r, i) => h("tr", { "data-test": "complaint-plan-row", "data-row": i },
        h("td", { class: "nowrap" }, r.when), h("td", {}, r.what), h("td", {}, r.who), h("td", {}, r.result || ""),
        h("td", { class: "num" }, r.effort_hours ?? ""),
        h("td", { class: "right nowrap" }, editing ? [
          h("button", { type: "button", class: "btn btn-small", "data-test": "complaint-plan-edit", onclick: () => this.editRow(i, r) }, T("Изменить")),
          h("button", { type: "button", class: "btn btn-small btn-ghost", "data-test": "complaint-plan-remove",
            onclick: (e) => run(e.currentTarget, async () => {
              await call(`${API.planRow(this.id, i)}${query({ revision: this.data.complaint.revision })}`, { method: "DELETE" });
              await this.reload();
            }, (err) => this.refused(err, this.el)) }, T("Удалить"))] : null)))
        : h("tr", { class: "empty" }, h("td", { colspan: 6 }, T("Плана пока нет")))));
    const parts = [h("h4", {}, T("План мероприятий")), h("div", { class: "table-wrap" }, table),
      h("span", { class: "cmp-error", "data-field": "action_plan", hidden: true })];
    if (editing) parts.push(this.rowForm(kept));
    return h("div", { class: "cmp-section", "data-test": "complaint-plan-part" }, parts);
  }

  rowForm(kept) {
    const r = (this.rowRefs = {});
    const today = isoDate(new Date());
    const typed = (name, props) => {
      const el = h("input", { name, autocomplete: "off", ...props, value: name in kept ? kept[name] : props.value || "" });
      if (name in kept) el.dataset.touched = "1";
      el.addEventListener("input", () => { el.dataset.touched = "1"; });
      return el;
    };
    r.when = typed("plan_when", { type: "date", value: today, "data-test": "complaint-plan-when", required: true });
    r.what = typed("plan_what", { type: "text", maxlength: 4000, "data-test": "complaint-plan-what" });
    r.who = typed("plan_who", { type: "text", maxlength: 200, "data-test": "complaint-plan-who" });
    r.result = typed("plan_result", { type: "text", maxlength: 4000, "data-test": "complaint-plan-result" });
    r.effort = typed("plan_effort", { type: "number", min: 0, max: 10000, step: "0.25", "data-test": "complaint-plan-effort" });
    r.button = h("button", { type: "submit", class: "btn", "data-test": "complaint-plan-add" },
      kept.plan_row !== undefined ? T("Сохранить") : T("Добавить строку"));
    r.row = kept.plan_row !== undefined ? kept.plan_row : null;
    const clearForm = () => { // added: the next render shows an empty form
      for (const el of [r.when, r.what, r.who, r.result, r.effort]) delete el.dataset.touched;
      this.editingRow = undefined;
    };
    const form = h("form", { class: "cmp-plan-form", "data-keep": "", onsubmit: (e) => {
      e.preventDefault();
      if (!r.what.value.trim() || !r.who.value.trim() || !r.when.value) return;
      const effort = r.effort.value === "" ? null : Number(r.effort.value);
      const row = { when: r.when.value, what: r.what.value.trim(), who: r.who.value.trim(), result: r.result.value.trim(), effort_hours: effort };
      const editing = r.row;
      this.change(r.button, editing === null ? API.plan(this.id) : API.planRow(this.id, editing), { row },
        { where: form.parentElement, after: clearForm });
    } }, field(T("Когда"), r.when, "when"), field(T("Что"), r.what, "what"), field(T("Кто"), r.who, "who"),
    field(T("Результат"), r.result, "result"), field(T("Часы"), r.effort, "effort"), r.button);
    return form;
  }

  editRow(i, row) {
    const r = this.rowRefs;
    r.row = i;
    this.editingRow = i;
    r.when.value = row.when;
    r.what.value = row.what;
    r.who.value = row.who;
    r.result.value = row.result || "";
    r.effort.value = row.effort_hours ?? "";
    for (const el of [r.when, r.what, r.who, r.result, r.effort]) el.dataset.touched = "1";
    setText(r.button, T("Сохранить"));
    r.result.focus();
  }

  filesPart(c, may) {
    const o = this.desk.options;
    const files = c.attachments || [];
    const list = h("ul", { class: "cmp-files", "data-test": "complaint-files" }, files.length
      ? files.map((a) => h("li", { "data-test": "complaint-file", "data-id": a.id },
        h("a", { href: `/api/complaints/attachments/${Number(a.id)}`, download: "", "data-test": "complaint-file-link" }, a.file_name),
        h("span", { class: "sub" }, ` · ${T("{n} КБ", { n: Math.max(1, Math.round(a.size / 1024)) })} · ${this.desk.person(a.by)} · ${fmtShortDateTime(a.at)}`)))
      : h("li", { class: "muted" }, T("Файлов нет")));
    const parts = [h("h4", {}, T("Файлы")), list];
    if (may.work && c.stage !== "closed") {
      const types = (o.attachment_types || []).map((t) => `.${t}`).join(",");
      const input = h("input", { type: "file", accept: types || null, "data-test": "complaint-file-input" });
      const progress = h("progress", { max: 100, value: 0, hidden: true, "data-test": "complaint-file-progress" });
      const note = h("span", { class: "muted", "data-test": "complaint-file-note" });
      const problem = h("span", { class: "cmp-error", "data-test": "complaint-file-error", hidden: true });
      input.addEventListener("change", async () => {
        const file = input.files && input.files[0];
        if (!file) return;
        problem.hidden = true;
        const limit = o.max_attachment_bytes || 0;
        if (limit && file.size > limit) {
          problem.textContent = T("Файл больше {mb} МБ", { mb: Math.round(limit / 1048576) });
          problem.hidden = false;
          input.value = "";
          return;
        }
        progress.hidden = false;
        progress.value = 0;
        input.disabled = true;
        try {
          const done = await upload(API.attachments(this.id), file, (share) => {
            progress.value = Math.round(share * 100);
            setText(note, T("Загружается {name}: {percent}%", { name: file.name, percent: Math.round(share * 100) }));
          });
          toast(T("Файл «{name}» прикреплён", { name: done.attachment.file_name }));
          await this.reload();
        } catch (err) {
          problem.textContent = errorText(err);
          problem.hidden = false;
          progress.hidden = true;
          setText(note, "");
          input.disabled = false;
          input.value = "";
        }
      });
      parts.push(h("label", { class: "cmp-upload" }, h("span", {}, T("Прикрепить файл")), input), progress, note, problem);
    }
    return h("div", { class: "cmp-section" }, parts);
  }

  historyPart(history) {
    const d = this.desk;
    const text = (item) => {
      const x = item.details || {};
      switch (item.action) {
        case "edited": {
          const spec = d.fieldSpec(x.field);
          const v = (value) => (value === null || value === undefined || value === "" ? "—"
            : value === true ? T("да") : value === false ? T("нет") : String(value));
          return `${spec ? titled(spec) : x.field}: ${v(x.old)} → ${v(x.new)}`;
        }
        case "moved":
          return [`${d.stageTitle(x.from)} → ${d.stageTitle(x.to)}`, x.reason ? ` (${x.reason})` : "",
            x.assignee ? ` · ${d.person(x.assignee)}` : "", x.decision_to ? ` · ${T("Решение отправлено: {to}", { to: x.decision_to })}` : ""].join("");
        case "handed_over":
          return `${d.person(x.to)}: ${x.question || ""}`;
        case "answered":
          return `${d.person(x.from)}: ${x.answer || ""}`;
        case "reassigned": {
          const moves = ["responsible", "assignee"].filter((k) => x[k]).map((k) => `${d.person(x[k].old)} → ${d.person(x[k].new)}`);
          return [...moves, x.reason || ""].filter(Boolean).join(" · ");
        }
        case "plan_added": case "plan_edited": case "plan_removed":
          return ((x.new || x.old || {}).what) || "";
        default:
          return x.file_name || "";
      }
    };
    const word = (item) => (item.action === "moved" && item.details && item.details.back ? T("возврат этапа")
      : HISTORY_WORDS[item.action] || T("изменение"));
    return h("div", { class: "cmp-section" }, h("h4", {}, T("История")),
      h("ol", { class: "cmp-history", "data-test": "complaint-history" }, [...history].reverse().map((item) =>
        h("li", { "data-test": "complaint-history-item", "data-action": item.action },
          h("span", { class: "sub" }, `${fmtShortDateTime(item.at)} · ${d.person(item.by)}`), " ",
          h("strong", {}, word(item)), " ", h("span", {}, text(item))))));
  }
}
