// The wallboard (/wallboard): the supervisor's figures in large type, no controls, for a TV. The figures and
// their meaning are the supervisor view's (supervisor.js); this only lays them out for reading across a room.
// It loads GET /api/supervisor at each (re)connect of its WebSocket (net.js Socket: reconnects by itself), then
// takes the `supervisor.figures` pushes. A TV logs in as a QA user (reads, never acts on a call): docs/panel.md.

import { translatePage, translations } from "./i18n.js";
import { Socket, api } from "./net.js";
import { Store } from "./store.js";
import { Figures, duration, percent, stateText, ticker } from "./supervisor.js";
import { clear, fmtDay, fmtDuration, h, manyPbxs, pbxName, setText } from "./util.js";

const T = translations({
  "Табло": "Wallboard",
  "на связи": "online",
  "подключение…": "connecting…",
  "нет связи, переподключение…": "offline, reconnecting…",
  "за {day}": "for {day}",
  "в пределах {s} с": "within {s} s",
  "коротких: {short}, без ответа: {unanswered}, ср. разговор: {talk}": "short: {short}, unanswered: {unanswered}, avg talk: {talk}",
  "звонков: {n}": "calls: {n}",
  "Табло доступно администраторам и контролю качества.": "The wallboard is for admins and QA users.",
  "Сервер недоступен, повторяем…": "The server is unreachable, retrying…",
  "Данных пока нет": "No figures yet",
  "Ждут": "Waiting",
  "Дольше всех": "Longest wait",
  "Уровень обслуживания": "Service level",
  "Принято": "Answered",
  "Ушли": "Abandoned",
  "Ср. ожидание": "Avg wait",
  "Загрузка…": "Loading…",
});

const RELOAD_EVERY_MS = 10 * 60 * 1000;
const CONN = { online: T("на связи"), connecting: T("подключение…"), offline: T("нет связи, переподключение…") };

function figure(test, value, text, alarm = false) {
  return h("div", { class: `wb-figure${alarm ? " wb-alarm" : ""}` },
    typeof value === "string" ? h("span", { class: "wb-value", "data-test": test }, value)
      : h("span", { class: "wb-value" }, value),
    h("span", { class: "wb-label" }, text));
}

class Wallboard {
  constructor(root) {
    this.root = root;
    this.store = new Store();
    this.figures = new Figures();
    this.conn = h("span", { class: "wb-conn", "data-test": "conn-status", "data-status": "connecting" }, CONN.connecting);
    this.day = h("span", { class: "wb-day", "data-test": "wb-day" });
    this.body = h("div", { class: "wb-body" });
    clear(root).append(h("div", { class: "wb-head" }, h("h1", {}, T("Табло")), this.day, h("span", { class: "spacer" }),
      this.conn), this.body);
    this.socket = new Socket({
      onStatus: (status) => {
        this.conn.dataset.status = status;
        setText(this.conn, CONN[status] || CONN.offline);
      },
      onMessage: (msg) => this.onMessage(msg),
    });
  }

  start() {
    this.socket.connect();
    // The figures read again now and then: heals a push lost on the way, and keeps the TV's login in use (a login
    // ends [http] session_hours after its last use, and a socket's pings do not count).
    setInterval(async () => {
      await this.figures.load();
      this.render();
    }, RELOAD_EVERY_MS);
    setInterval(() => { // waits and times in a state tick in place
      const now = Date.now();
      for (const el of document.querySelectorAll("[data-since]")) setText(el, fmtDuration((now - Number(el.dataset.since)) / 1000));
    }, 1000);
  }

  async onMessage(msg) {
    this.store.apply(msg); // hello: the server's clock and the PBXs' names
    if (msg.type === "hello") {
      await this.figures.load();
      this.render();
    } else if (msg.type === "supervisor.figures" && this.figures.take(msg)) {
      this.render();
    }
  }

  render() {
    clear(this.body);
    const all = this.figures.list();
    if (this.figures.error && !all.length) {
      const forbidden = this.figures.error.status === 403;
      this.body.append(h("p", { class: "wb-error", "data-test": "wb-error" },
        forbidden ? T("Табло доступно администраторам и контролю качества.") : T("Сервер недоступен, повторяем…")));
      return;
    }
    if (!all.length) {
      this.body.append(h("p", { class: "wb-empty", "data-test": "wb-empty" }, T("Данных пока нет")));
      return;
    }
    setText(this.day, T("за {day}", { day: fmtDay(all[0].day) }));
    for (const f of all) this.body.append(this.pbx(f));
  }

  pbx(f) {
    const store = this.store;
    const queues = f.queues.map((q) => h("section", { class: "wb-queue", "data-test": "wb-queue", "data-queue": q.queue, "data-pbx": f.pbx },
      h("h2", {}, q.queue),
      h("div", { class: "wb-figures" },
        figure("wb-waiting", String(q.waiting), T("Ждут"), q.waiting > 0),
        figure("wb-longest", ticker(store, q.longest_wait_since, { "data-test": "wb-longest" }), T("Дольше всех"), q.waiting > 0),
        figure("wb-sl", percent(q.service_level), `${T("Уровень обслуживания")} (${T("в пределах {s} с", { s: f.service_level_seconds })})`),
        figure("wb-answered", String(q.answered), T("Принято")),
        figure("wb-abandoned", String(q.abandoned), T("Ушли")),
        figure("wb-avg-wait", duration(q.average_wait_seconds), T("Ср. ожидание"))),
      h("div", { class: "wb-small", "data-test": "wb-more" },
        T("коротких: {short}, без ответа: {unanswered}, ср. разговор: {talk}",
          { short: q.short_abandoned, unanswered: q.unanswered, talk: duration(q.average_talk_seconds) }))));
    const agents = f.agents.map((a) => h("div", { class: "wb-agent", "data-test": "wb-agent", "data-extension": a.extension, "data-state": a.state, "data-pbx": f.pbx },
      h("div", {}, h("span", { class: "wb-ext" }, a.extension), " ", h("span", { class: "wb-name" }, a.name || "")),
      h("div", { class: "wb-state" }, h("span", { "data-test": "wb-agent-state" }, stateText(a.state)), " · ",
        ticker(store, a.since, { "data-test": "wb-agent-since" })),
      h("div", { class: "wb-small", "data-test": "wb-agent-calls" }, T("звонков: {n}", { n: a.calls }))));
    return h("div", { class: "wb-pbx", "data-test": "wb-pbx", "data-pbx": f.pbx },
      manyPbxs() ? h("div", { class: "wb-pbx-name" }, pbxName(f.pbx)) : null,
      h("div", { class: "wb-queues" }, queues),
      h("div", { class: "wb-agents" }, agents));
  }
}

async function main() {
  translatePage(T); // wallboard.html's own texts
  const root = document.getElementById("wallboard");
  try {
    await api("/api/me"); // not logged in: api() goes to the login form
  } catch {
    return;
  }
  new Wallboard(root).start();
}

main().catch((err) => console.error(err));
