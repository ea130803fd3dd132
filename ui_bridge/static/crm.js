// The CRM push, for the admins (docs/crm.md#watching-the-push): each CRM the calls are pushed into, with how many
// requests wait, how many were given up and how long the oldest waiting one has waited, then the given-up requests
// with their error and «Повторить» (POST /api/crm/requests/{id}/retry: the request and its call's later given-up
// ones queued again). Shown only when a CRM is configured: GET /api/crm lists none otherwise, and the block stays
// hidden. The outbox changes on the senders' time, not with any panel message, so it is read every POLL_MS (and at
// once after a reconnect or a «Повторить»).

import { translations } from "./i18n.js";
import { api } from "./net.js";
import { busy, clear, errorText, fmtDuration, fmtShortDateTime, h, setText, toast } from "./util.js";

const T = translations({
  "Битрикс24": "Bitrix24",
  "1С": "1C",
  "вебхук": "webhook",
  "в очереди {n}": "{n} waiting",
  "не отправлено {n}": "{n} given up",
  "отправлено {n}": "{n} sent",
  "задержка {time}": "lag {time}",
  "без задержки": "no lag",
  "(нет в настройках)": "(not configured)",
  "последняя ошибка: {error}": "last error: {error}",
  "Не отправлены": "Given up",
  "Повторить": "Retry",
  "попыток: {n}": "tries: {n}",
  "звонок {call}": "call {call}",
  "Запрос снова в очереди": "The request is queued again",
  "Запросы снова в очереди: {n}": "Requests queued again: {n}",
});

/** How often the outbox is read while the block is shown. */
const POLL_MS = 5000;
/** A lag above this (seconds) is marked: the CRM is most likely down or refusing. */
const LAG_MARK_SECONDS = 60;

/** A CRM's name for people (the configuration's key otherwise: amoCRM's, Zammad's own names). */
function crmName(crm) {
  switch (crm) {
    case "bitrix24": return T("Битрикс24");
    case "amocrm": return "amoCRM";
    case "zammad": return "Zammad";
    case "onec": return T("1С");
    case "webhook": return T("вебхук");
    default: return crm;
  }
}

export class CrmBlock {
  constructor(ctx) {
    this.ctx = ctx;
    this.data = null;
    this.timer = null;
    this.status = h("span", { class: "muted", "data-test": "crm-status" });
    this.crms = h("ul", { class: "crm-list", "data-test": "crm-list" });
    this.givenUpHead = h("h3", { class: "crm-given-up-head", hidden: true }, T("Не отправлены"));
    this.givenUp = h("ul", { class: "crm-given-up", "data-test": "crm-given-up" });
    this.el = h("section", { class: "panel crm-block", "data-test": "crm-block", hidden: true },
      h("div", { class: "panel-head" }, h("h2", {}, "CRM"), this.status),
      this.crms, this.givenUpHead, this.givenUp);
  }

  /** Read the outbox now, then every POLL_MS while a CRM is configured. */
  async load() {
    clearTimeout(this.timer);
    this.timer = null;
    try {
      this.data = await api("/api/crm");
      setText(this.status, "");
    } catch (err) {
      setText(this.status, errorText(err));
      this.schedule();
      return;
    }
    this.el.dataset.loaded = "true";
    if (!this.data.crms.length) { // no CRM configured, nothing left in the outbox: no block, no polling
      this.el.hidden = true;
      return;
    }
    this.el.hidden = false;
    this.render();
    this.schedule();
  }

  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), POLL_MS);
  }

  onMessage(msg) {
    if (msg.type === "state" && msg.scope === "all" && this.ctx.reconnected) this.load();
  }

  retry(item, button) {
    busy(button, async () => {
      const answer = await api(`/api/crm/requests/${encodeURIComponent(item.id)}/retry`, { method: "POST", body: {} });
      const n = (answer && answer.requests ? answer.requests.length : 1);
      toast(n > 1 ? T("Запросы снова в очереди: {n}", { n }) : T("Запрос снова в очереди"));
      await this.load();
    });
  }

  crmRow(c) {
    const lagged = c.lag_seconds > LAG_MARK_SECONDS;
    const parts = [
      h("strong", { class: "crm-name" }, crmName(c.crm)),
      c.configured ? null : h("span", { class: "muted" }, ` ${T("(нет в настройках)")}`),
      h("span", { class: "crm-figure", "data-test": "crm-pending" }, T("в очереди {n}", { n: c.pending })),
      h("span", { class: `crm-figure${c.failed ? " crm-bad" : ""}`, "data-test": "crm-failed" },
        T("не отправлено {n}", { n: c.failed })),
      h("span", { class: "crm-figure muted", "data-test": "crm-sent" }, T("отправлено {n}", { n: c.sent })),
      h("span", { class: `crm-figure${lagged ? " crm-bad" : ""}`, "data-test": "crm-lag" },
        c.pending ? T("задержка {time}", { time: fmtDuration(c.lag_seconds) }) : T("без задержки")),
    ];
    return h("li", { class: `crm-row${c.failed || lagged ? " crm-trouble" : ""}`, "data-test": "crm-row",
      "data-crm": c.crm, "data-pending": c.pending, "data-failed": c.failed },
    h("div", { class: "crm-figures" }, parts),
    c.last_error ? h("div", { class: "crm-error sub", "data-test": "crm-last-error" },
      T("последняя ошибка: {error}", { error: c.last_error })) : null);
  }

  givenUpRow(item) {
    return h("li", { class: "crm-request", "data-test": "crm-request", "data-id": item.id, "data-crm": item.crm },
      h("div", { class: "crm-request-head" },
        h("span", { class: "crm-when" }, fmtShortDateTime(item.failed_at || item.created_at)),
        h("strong", {}, crmName(item.crm)),
        h("span", { class: "crm-kind", "data-test": "crm-request-kind" }, item.kind),
        h("span", { class: "muted" }, T("звонок {call}", { call: item.call })),
        h("span", { class: "muted" }, T("попыток: {n}", { n: item.attempts })),
        h("button", { type: "button", class: "btn btn-small", "data-test": "crm-retry",
          onclick: (e) => this.retry(item, e.currentTarget) }, T("Повторить"))),
      item.error ? h("div", { class: "crm-error sub", "data-test": "crm-request-error" }, item.error) : null);
  }

  render() {
    const data = this.data;
    if (!data) return;
    clear(this.crms);
    for (const c of data.crms) this.crms.append(this.crmRow(c));
    clear(this.givenUp);
    for (const item of data.given_up) this.givenUp.append(this.givenUpRow(item));
    this.givenUpHead.hidden = data.given_up.length === 0;
    this.el.dataset.givenUp = String(data.given_up.length);
  }
}
