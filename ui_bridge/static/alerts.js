// The supervisor's alerts in the admin's view: the active ones on top with an "acknowledge" button (who acknowledged
// shows for every other supervisor), a sound when one is raised, and the history (GET /api/alerts).
//
// Sound: a browser plays audio only after the user has interacted with the page. The first click or key press
// anywhere on the panel unlocks it (a muted play of the tone, for the browsers that want one per element); until
// then an alert that cannot be heard shows "turn the sound on" next to the alerts' title. docs/panel.md#alerts.

import { translations } from "./i18n.js";
import { api, query } from "./net.js";
import { busy, clear, errorText, fmtDateTime, fmtDuration, fmtShortDateTime, h, manyPbxs, pbxName, setText, toast } from "./util.js";

const T = translations({
  "Оповещения": "Alerts",
  "Активных оповещений нет": "No active alerts",
  "Принять": "Acknowledge",
  "Принял {who}, {when}": "Acknowledged by {who}, {when}",
  "История оповещений": "Alert history",
  "Показать ещё": "Show more",
  "Браузер не дал воспроизвести звук: нажмите, чтобы включить": "The browser blocked the sound: click to turn it on",
  "Долгое ожидание": "Long wait",
  "Уровень сервиса": "Service level",
  "Долгая пауза": "Long pause",
  "Не перезвонили": "Not called back",
  "{caller} ждёт в очереди {queue}": "{caller} is waiting in queue {queue}",
  "Очередь {queue}: {level}% при пороге {threshold}%": "Queue {queue}: {level}% against a threshold of {threshold}%",
  "{answered} из {n} звонка за {minutes} мин отвечены за {within} с|{answered} из {n} звонков за {minutes} мин отвечены за {within} с|{answered} из {n} звонков за {minutes} мин отвечены за {within} с":
    "{answered} of {n} call in {minutes} min answered within {within} s|{answered} of {n} calls in {minutes} min answered within {within} s",
  "{who} на паузе": "{who} is paused",
  "Пропущенный от {caller}": "Missed call from {caller}",
  "пропущен {when}": "missed {when}",
  "номер скрыт": "withheld number",
  "ждёт": "waiting",
  "на паузе": "paused",
  "Когда": "When",
  "Что": "What",
  "Принято": "Acknowledged",
  "Снято": "Resolved",
  "активно": "active",
  "История пуста": "No alerts yet",
  "Оповещение принято": "Alert acknowledged",
  "Оповещение уже принято": "Someone has acknowledged this alert already",
  "Оповещение уже принял {who}": "{who} has acknowledged this alert already",
  "загрузка…": "loading…",
  "Оповещение": "Alert",
});

const KIND = {
  long_wait: T("Долгое ожидание"),
  service_level: T("Уровень сервиса"),
  paused: T("Долгая пауза"),
  missed: T("Не перезвонили"),
};
const HISTORY_PAGE = 20;
const SOUND = "/static/alert.wav";

function num(value) {
  return value === null || value === undefined ? "?" : String(Math.round(Number(value) * 10) / 10);
}

export class AlertsPanel {
  constructor(ctx) {
    this.ctx = ctx;
    this.alerts = new Map(); // id -> alert (AlertInfo), active ones and the history read so far
    this.more = null; // the history's next page (?before=)
    this.unlocked = false;
    this.sound = h("audio", { src: SOUND, preload: "auto", "data-test": "alert-sound", "data-plays": "0" });
    this.soundHint = h("button", { type: "button", class: "link alert-sound-hint", "data-test": "alert-sound-locked",
      hidden: true, onclick: () => this.play() }, T("Браузер не дал воспроизвести звук: нажмите, чтобы включить"));
    this.count = h("span", { class: "count count-alert", "data-test": "alerts-count" });
    this.status = h("span", { class: "muted" });
    this.list = h("ul", { class: "alert-list", "data-test": "alerts-active" });
    this.historyBody = h("tbody");
    this.moreButton = h("button", { type: "button", class: "btn btn-small", "data-test": "alert-history-more", hidden: true,
      onclick: () => busy(this.moreButton, () => this.loadHistory(this.more)) }, T("Показать ещё"));
    this.history = h("details", { class: "alert-history", "data-test": "alert-history" },
      h("summary", {}, T("История оповещений")),
      h("div", { class: "table-wrap" }, h("table", { class: "table" },
        h("thead", {}, h("tr", {}, [T("Когда"), T("Что"), T("Принято"), T("Снято")].map((t) => h("th", {}, t)))),
        this.historyBody)),
      this.moreButton);
    this.el = h("section", { class: "panel alerts", "data-test": "alerts", "data-active": "0" },
      h("div", { class: "panel-head" }, h("h2", {}, T("Оповещения")), this.count, this.status,
        h("span", { class: "spacer" }), this.soundHint),
      this.list, this.history, this.sound);
    const unlock = () => {
      document.removeEventListener("pointerdown", unlock, true);
      document.removeEventListener("keydown", unlock, true);
      this.unlock();
    };
    document.addEventListener("pointerdown", unlock, true);
    document.addEventListener("keydown", unlock, true);
  }

  /** The first gesture on the page: a muted play lets later plays make a sound (browsers' autoplay rules). */
  unlock() {
    if (this.unlocked) return;
    this.unlocked = true;
    this.soundHint.hidden = true;
    const audio = this.sound;
    audio.muted = true;
    const done = () => {
      audio.pause();
      audio.currentTime = 0;
      audio.muted = false;
    };
    const started = audio.play();
    if (started && started.then) started.then(done, done);
    else done();
  }

  /** One ring of the tone; a browser that refuses it (no gesture yet) gets the "turn the sound on" link. */
  play() {
    const audio = this.sound;
    audio.muted = false;
    audio.currentTime = 0;
    const started = audio.play();
    if (!started || !started.then) return;
    started.then(() => {
      audio.dataset.plays = String(Number(audio.dataset.plays || 0) + 1);
      this.soundHint.hidden = true;
      this.unlocked = true;
    }, () => {
      this.soundHint.hidden = false;
    });
  }

  /** The active alerts and the first page of the history (at start and after a reconnect). */
  async load() {
    setText(this.status, T("загрузка…"));
    try {
      const [active, history] = await Promise.all([
        api(`/api/alerts${query({ status: "active", limit: 200 })}`),
        api(`/api/alerts${query({ limit: HISTORY_PAGE })}`),
      ]);
      const fresh = new Map();
      for (const a of [...(history.alerts || []), ...(active.alerts || [])]) fresh.set(a.id, this.newer(a, this.alerts.get(a.id)));
      // What messages said while the answers were on their way is kept (a message is newer than the answer).
      for (const [id, a] of this.alerts) if (a.fromEvent) fresh.set(id, this.newer(a, fresh.get(id)));
      // An alert still active locally but not in the answer was resolved meanwhile, or is older than this page.
      this.alerts = fresh;
      this.more = history.next;
      setText(this.status, "");
    } catch (err) {
      setText(this.status, errorText(err));
    }
    this.render();
  }

  async loadHistory(before) {
    const data = await api(`/api/alerts${query({ limit: HISTORY_PAGE, before })}`);
    for (const a of data.alerts || []) this.alerts.set(a.id, this.newer(a, this.alerts.get(a.id)));
    this.more = data.next;
    this.render();
  }

  /** Of two versions of one alert, the later one: its acknowledgement and its resolution are never undone. */
  newer(a, b) {
    if (!b) return a;
    return {
      ...a, ...b,
      acknowledged_at: b.acknowledged_at || a.acknowledged_at, acknowledged_by: b.acknowledged_by || a.acknowledged_by,
      resolved_at: b.resolved_at || a.resolved_at,
      status: a.status === "resolved" || b.status === "resolved" ? "resolved" : "active",
      fromEvent: a.fromEvent || b.fromEvent,
    };
  }

  onMessage(msg) {
    if (msg.type !== "alert.raised" && msg.type !== "alert.acknowledged" && msg.type !== "alert.resolved") return;
    const alert = { ...msg.alert, fromEvent: true };
    this.alerts.set(alert.id, this.newer(alert, this.alerts.get(alert.id)));
    if (msg.type === "alert.raised") this.play();
    this.render();
  }

  acknowledge(alert, button) {
    busy(button, async () => {
      let data;
      try {
        data = await this.ctx.socket.request("alert.ack", { alert_id: alert.id });
      } catch (err) {
        if (err.code !== "conflict" && err.code !== "not_found") throw err;
        toast(err.by ? T("Оповещение уже принял {who}", { who: err.by }) : T("Оповещение уже принято"));
        await this.load(); // who took it, from the history
        return;
      }
      if (data && data.alert) this.alerts.set(alert.id, this.newer(this.alerts.get(alert.id) || alert, data.alert));
      toast(T("Оповещение принято"));
      this.history.open = true; // where it went, with the supervisor's name
      this.render();
    });
  }

  describe(a) {
    const f = a.figures || {};
    const store = this.ctx.store;
    const caller = [f.caller_display || f.caller || T("номер скрыт"), f.caller_name ? ` (${f.caller_name})` : ""].join("");
    const ticking = (label) => (a.status === "active" && a.since
      ? h("span", { class: "sub" }, `${label} `, h("span", { class: "ticker", "data-since": store.localMs(a.since) },
        fmtDuration((Date.now() - store.localMs(a.since)) / 1000)))
      : null);
    switch (a.kind) {
      case "long_wait":
        return [h("div", {}, T("{caller} ждёт в очереди {queue}", { caller, queue: f.queue || "" })), ticking(T("ждёт"))];
      case "service_level":
        return [h("div", {}, T("Очередь {queue}: {level}% при пороге {threshold}%",
          { queue: f.queue || "", level: num(f.service_level), threshold: num(f.threshold_percent) })),
        h("div", { class: "sub" }, T.plural("{answered} из {n} звонка за {minutes} мин отвечены за {within} с|{answered} из {n} звонков за {minutes} мин отвечены за {within} с|{answered} из {n} звонков за {minutes} мин отвечены за {within} с",
          Number(f.counted_calls) || 0, { answered: f.answered_within ?? "?", minutes: num(f.window_minutes),
            within: num(f.within_seconds) }))];
      case "paused": {
        const who = f.name ? `${f.name} (${f.extension || a.subject})` : f.extension || a.subject;
        return [h("div", {}, T("{who} на паузе", { who })), ticking(T("на паузе"))];
      }
      case "missed":
        return [h("div", {}, T("Пропущенный от {caller}", { caller })),
          h("div", { class: "sub" }, T("пропущен {when}", { when: fmtShortDateTime(a.since) }))];
      default:
        return [h("div", {}, a.subject || "")];
    }
  }

  render() {
    const all = [...this.alerts.values()];
    // Active and not yet acknowledged: what the supervisor must look at. Once someone acknowledged an alert it goes
    // to the history (with who did it, for every supervisor), and stays there "active" until its condition ends.
    const active = all.filter((a) => a.status === "active" && !a.acknowledged_by).sort((x, y) => y.id - x.id);
    setText(this.count, active.length ? String(active.length) : "");
    this.el.dataset.active = String(active.length);
    clear(this.list);
    if (!active.length) this.list.append(h("li", { class: "alert-empty muted" }, T("Активных оповещений нет")));
    for (const a of active) {
      const ack = h("button", { type: "button", class: "btn btn-small btn-primary", "data-test": "alert-ack",
        onclick: (e) => this.acknowledge(a, e.currentTarget) }, T("Принять"));
      this.list.append(h("li", {
        class: `alert alert-${a.kind}`, "data-test": "alert", "data-id": a.id, "data-kind": a.kind, "data-key": a.key,
      },
      h("div", { class: "alert-kind" }, KIND[a.kind] || T("Оповещение"),
        manyPbxs() ? h("span", { class: "chip chip-small pbx" }, pbxName(a.pbx)) : null),
      h("div", { class: "alert-what" }, this.describe(a)),
      h("div", { class: "alert-ack" }, ack)));
    }
    clear(this.historyBody);
    const history = all.sort((x, y) => y.id - x.id);
    if (!history.length) this.historyBody.append(h("tr", { class: "empty" }, h("td", { colspan: 4 }, T("История пуста"))));
    for (const a of history) {
      this.historyBody.append(h("tr", { "data-test": "alert-history-row", "data-id": a.id, "data-kind": a.kind,
        "data-status": a.status },
      h("td", { class: "nowrap" }, fmtShortDateTime(a.raised_at)),
      h("td", {}, h("div", {}, KIND[a.kind] || T("Оповещение")), h("div", { class: "sub" }, this.describe({ ...a, status: "resolved" }))),
      h("td", { "data-test": "alert-history-acked" }, a.acknowledged_by
        ? h("span", { title: fmtDateTime(a.acknowledged_at) },
          T("Принял {who}, {when}", { who: a.acknowledged_by, when: fmtShortDateTime(a.acknowledged_at) }))
        : ""),
      h("td", { class: "nowrap", "data-test": "alert-history-resolved" },
        a.status === "resolved" ? fmtShortDateTime(a.resolved_at) : T("активно"))));
    }
    this.moreButton.hidden = !this.more;
  }
}
