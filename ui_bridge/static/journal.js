// The call journal (GET /api/calls): a filter form and a table; the agent's "my recent calls" reuses the table.
// Pages follow the server's cursor (`next` of an answer, sent back as `?after=`): a page costs the server its own
// rows however deep it is, and calls saved meanwhile never show a row twice or skip one (docs/protocol.md).

import { translations } from "./i18n.js";
import { api, query } from "./net.js";
import {
  clear, errorText, fmtDateTime, fmtDuration, h, label, manyPbxs, pbxList, pbxName, setText, shownNumber, toast,
} from "./util.js";

const T = translations({
  "Дата «с» позже даты «по»: поменяйте их местами": "The “from” date is after the “to” date: swap them",
  "скрыт": "withheld",
  "Начало": "Started",
  "Тип": "Type",
  "Абонент": "Caller",
  "Набран": "Dialled",
  "Итог": "Outcome",
  "Разговор": "Talk",
  "Перевод": "Transfer",
  "Очередь": "Queue",
  "Оператор": "Agent",
  "Ожидание": "Wait",
  "АТС": "PBX",
  "Звонков нет": "No calls",
  "Журнал звонков": "Call journal",
  "с даты": "from date",
  "по дату": "to date",
  "номер": "number",
  "оператор": "agent",
  "все направления": "all directions",
  "любой итог": "any outcome",
  "все АТС": "all PBXs",
  "← Назад": "← Back",
  "Далее →": "Next →",
  "с ": "from ",
  "по ": "to ",
  "Показать": "Show",
  "Сбросить": "Reset",
  "загрузка…": "loading…",
  "Мои последние звонки": "My recent calls",
  "Прослушать": "Listen",
  "Поиск по разговорам": "Search the calls",
  "Запись, расшифровка и оценка звонка": "The call's recording, transcript and score",
});

function outcomeCell(row) {
  const outcome = row.outcome || (row.answered ? "answered" : "missed");
  return h("td", {},
    h("span", { class: `badge outcome-${outcome}` }, label("outcome", outcome)),
    row.missed_reason ? h("div", { class: "sub" }, label("reason", row.missed_reason)) : null);
}

function partyCell(number, name) {
  return h("td", { "data-test": "journal-party" }, h("div", { class: "num" }, number || T("скрыт")),
    name ? h("div", { class: "sub" }, name) : null);
}

/** Who is who in a journal row. An outbound call's caller is the agent who dialled (their extension and name) and
 * its "called" the customer: the customer goes under «Абонент», the agent under «Оператор», as for inbound calls. */
function roles(r) {
  if (r.direction === "outbound") {
    return { party: shownNumber(r, "called"), partyName: null, called: "", agent: r.caller || "", agentName: r.caller_name };
  }
  const agent = r.answered_by || (Array.isArray(r.agents_answered) ? r.agents_answered.join(", ") : "");
  return { party: shownNumber(r, "caller"), partyName: r.caller_name, called: shownNumber(r, "called") || "", agent,
    agentName: null };
}

/** The link to the call on the QA page (its recording, transcript, comments and score) for a row with a recording. */
function qaLink(r) {
  const recorded = (Array.isArray(r.recordings) && r.recordings.length) || r.recording;
  if (!recorded) return null;
  const where = new URLSearchParams({ call: `${r.pbx || "main"}/${r.linkedid}` });
  return h("div", {}, h("a", { class: "btn btn-small qa-link", "data-test": "journal-qa", href: `/qa#${where}`,
    target: "_blank", rel: "noopener", title: T("Запись, расшифровка и оценка звонка") }, T("Прослушать")));
}

// The full table is the journal's, which only admins and QA see (the agent's recent calls are compact): its rows with a
// recording link to the QA page, which is theirs.
export function callsTable(rows, { testId = "journal-table", compact = false } = {}) {
  const withPbx = manyPbxs(); // the PBX column only for a user who sees several
  const head = [...(compact
    ? [T("Начало"), T("Тип"), T("Абонент"), T("Набран"), T("Итог"), T("Разговор"), T("Перевод")]
    : [T("Начало"), T("Тип"), T("Абонент"), T("Набран"), T("Очередь"), T("Оператор"), T("Итог"), T("Ожидание"), T("Разговор"),
      T("Перевод")]),
  ...(withPbx ? [T("АТС")] : [])];
  const body = rows.map((r) => {
    const who = roles(r);
    const cells = compact
      ? [
        h("td", { class: "nowrap" }, fmtDateTime(r.started_at)),
        h("td", {}, label("direction", r.direction)),
        partyCell(who.party, who.partyName),
        h("td", { class: "num", "data-test": "journal-called" }, who.called),
        outcomeCell(r),
        h("td", { class: "right" }, r.talk_seconds ? fmtDuration(r.talk_seconds) : ""),
        h("td", {}, r.transferred_to || ""),
      ]
      : [
        h("td", { class: "nowrap" }, fmtDateTime(r.started_at)),
        h("td", {}, label("direction", r.direction)),
        partyCell(who.party, who.partyName),
        h("td", { class: "num", "data-test": "journal-called" }, who.called),
        h("td", {}, r.queue || ""),
        h("td", { "data-test": "journal-agent" }, h("div", {}, who.agent),
          who.agentName ? h("div", { class: "sub" }, who.agentName) : null),
        outcomeCell(r),
        h("td", { class: "right" }, r.ring_seconds ? fmtDuration(r.ring_seconds) : ""),
        h("td", { class: "right" }, r.talk_seconds ? fmtDuration(r.talk_seconds) : "", qaLink(r)),
        h("td", {}, r.transferred_to || ""),
      ];
    if (withPbx) cells.push(h("td", { "data-test": "journal-pbx-name" }, pbxName(r.pbx)));
    return h("tr", { "data-test": "journal-row", "data-linkedid": r.linkedid, "data-pbx": r.pbx }, cells);
  });
  return h("table", { class: "table", "data-test": testId },
    h("thead", {}, h("tr", {}, head.map((t) => h("th", {}, t)))),
    h("tbody", {}, body.length ? body : h("tr", { class: "empty" }, h("td", { colspan: head.length }, T("Звонков нет")))));
}

/** "2026-11-24" (a date input) -> "2026-11-24T00:00:00+03:00" in the browser's time zone, plus `days`. */
export function dayStart(value, days = 0) {
  if (!value) return "";
  const [y, m, d] = value.split("-").map(Number);
  const at = new Date(y, m - 1, d + days, 0, 0, 0);
  const off = -at.getTimezoneOffset();
  const sign = off >= 0 ? "+" : "-";
  const pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, "0");
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T00:00:00`
    + `${sign}${pad(off / 60)}:${pad(off % 60)}`;
}

const PAGE = 50;

export class Journal {
  constructor({ title = T("Журнал звонков"), pbxFilter = false } = {}) {
    // The `after` of each page walked so far (the first page has none): "back" pops, "next" pushes `next`.
    this.cursors = [null];
    this.nextCursor = null;
    this.loading = false;
    this.again = false;
    this.f = {
      since: h("input", { type: "date", "data-test": "journal-since", "aria-label": T("с даты") }),
      until: h("input", { type: "date", "data-test": "journal-until", "aria-label": T("по дату") }),
      number: h("input", { type: "search", placeholder: T("номер"), "data-test": "journal-number", size: 14 }),
      agent: h("input", { type: "search", placeholder: T("оператор"), "data-test": "journal-agent", size: 8 }),
      direction: h("select", { "data-test": "journal-direction" },
        h("option", { value: "" }, T("все направления")),
        ["inbound", "outbound", "internal"].map((v) => h("option", { value: v }, label("direction", v)))),
      outcome: h("select", { "data-test": "journal-outcome" },
        h("option", { value: "" }, T("любой итог")),
        ["answered", "missed", "failed"].map((v) => h("option", { value: v }, label("outcome", v)))),
    };
    if (pbxFilter) {
      // Filled once the server has said which PBXs the user sees (showPbxs, at `hello`); hidden for one PBX.
      this.f.pbx = h("select", { "data-test": "journal-pbx", "aria-label": T("АТС"), hidden: true },
        h("option", { value: "" }, T("все АТС")));
    }
    this.status = h("span", { class: "muted", "data-test": "journal-status" });
    this.rangeError = h("div", { class: "filter-error", "data-test": "journal-range-error", role: "alert", hidden: true },
      T("Дата «с» позже даты «по»: поменяйте их местами"));
    this.prev = h("button", { type: "button", class: "btn", "data-test": "journal-prev", onclick: () => this.page(-1) }, T("← Назад"));
    this.next = h("button", { type: "button", class: "btn", "data-test": "journal-next", onclick: () => this.page(1) }, T("Далее →"));
    this.tableBox = h("div", { class: "table-wrap" });
    const form = h("form", { class: "filters", "data-test": "journal-filters", onsubmit: (e) => { e.preventDefault(); this.first(); } },
      h("label", {}, T("с "), this.f.since), h("label", {}, T("по "), this.f.until),
      this.f.number, this.f.agent, this.f.direction, this.f.outcome, this.f.pbx || null,
      h("button", { type: "submit", class: "btn btn-primary", "data-test": "journal-apply" }, T("Показать")),
      h("button", { type: "button", class: "btn", "data-test": "journal-reset", onclick: () => this.reset() }, T("Сбросить")));
    this.el = h("section", { class: "panel journal", "data-test": "journal" },
      h("div", { class: "panel-head" }, h("h2", {}, title), this.status, h("span", { class: "spacer" }),
        // The QA page (recordings, transcripts, scores): the journal is the admins' and QA's, whose page it is.
        h("a", { class: "btn btn-small", href: "/qa", target: "_blank", rel: "noopener", "data-test": "journal-qa-page" },
          T("Поиск по разговорам"))),
      form, this.rangeError, this.tableBox,
      h("div", { class: "pager" }, this.prev, this.next));
  }

  /** The PBX filter's choices: the PBXs the user sees (from ``hello``); shown only when there are several. */
  showPbxs() {
    const select = this.f.pbx;
    if (!select) return;
    const chosen = select.value;
    select.replaceChildren(h("option", { value: "" }, T("все АТС")),
      ...pbxList().map((p) => h("option", { value: p.id }, p.name || p.id)));
    select.value = pbxList().some((p) => p.id === chosen) ? chosen : "";
    select.hidden = !manyPbxs();
  }

  reset() {
    for (const input of Object.values(this.f)) input.value = "";
    this.first();
  }

  /** Back to the first page (new filters: the cursors of the old ones mean nothing). */
  first() {
    const backwards = Boolean(this.f.since.value && this.f.until.value && this.f.since.value > this.f.until.value);
    for (const input of [this.f.since, this.f.until]) {
      if (backwards) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
    this.rangeError.hidden = !backwards;
    if (backwards) {
      toast(T("Дата «с» позже даты «по»: поменяйте их местами"), "error");
      this.f.since.focus();
      return;
    }
    this.cursors = [null];
    this.nextCursor = null;
    this.load();
  }

  page(step) {
    if (step > 0) {
      if (!this.nextCursor) return;
      this.cursors.push(this.nextCursor);
    } else if (this.cursors.length > 1) {
      this.cursors.pop();
    } else {
      return;
    }
    this.nextCursor = null;
    this.load();
  }

  get pageIndex() {
    return this.cursors.length - 1;
  }

  params() {
    const f = this.f;
    return {
      since: dayStart(f.since.value),
      until: dayStart(f.until.value, 1),
      number: f.number.value.trim(),
      agent: f.agent.value.trim(),
      direction: f.direction.value,
      outcome: f.outcome.value,
      pbx: f.pbx ? f.pbx.value : "",
      limit: PAGE,
      after: this.cursors[this.cursors.length - 1],
    };
  }

  /** The rows on show drawn again, with no request (the PBX column comes with `hello`): the page stays the same
   * page, so the calls saved meanwhile never shift the pages after it. */
  rerender() {
    if (this.rows) clear(this.tableBox).append(callsTable(this.rows));
  }

  /** A call ended: reload, but only the first page (a user paging back keeps their view). */
  refreshSoon() {
    if (this.pageIndex !== 0) return;
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.load(), 400);
  }

  async load() {
    if (this.loading) {
      this.again = true;
      return;
    }
    this.loading = true;
    setText(this.status, T("загрузка…"));
    try {
      const data = await api(`/api/calls${query(this.params())}`);
      const rows = (data && data.calls) || [];
      this.rows = rows;
      clear(this.tableBox).append(callsTable(rows));
      this.nextCursor = (data && data.next) || null;
      const before = this.pageIndex * PAGE; // every page before this one was full: it had a `next`
      setText(this.status, rows.length ? `${before + 1}–${before + rows.length}` : "");
      this.prev.disabled = this.pageIndex === 0;
      this.next.disabled = !this.nextCursor;
    } catch (err) {
      setText(this.status, errorText(err));
    } finally {
      this.loading = false;
      if (this.again) {
        this.again = false;
        this.load();
      }
    }
  }
}

/** The agent's "my recent calls": the last 20 of their own calls. */
export class RecentCalls {
  constructor() {
    this.tableBox = h("div", { class: "table-wrap" });
    this.status = h("span", { class: "muted" });
    this.el = h("section", { class: "panel", "data-test": "recent-calls" },
      h("div", { class: "panel-head" }, h("h2", {}, T("Мои последние звонки")), this.status), this.tableBox);
    this.loading = false;
  }

  refreshSoon() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), 400);
  }

  async load() {
    try {
      const data = await api("/api/calls?limit=20");
      clear(this.tableBox).append(callsTable((data && data.calls) || [], { testId: "recent-table", compact: true }));
      setText(this.status, "");
    } catch (err) {
      setText(this.status, errorText(err));
    }
  }
}
