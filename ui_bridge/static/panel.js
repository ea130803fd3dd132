// The panel's entry point: who am I (GET /api/me), which view, the WebSocket, the one-second ticker.

import { AdminView, QaView } from "./admin.js";
import { AgentView } from "./agent.js";
import { ComplaintsDesk } from "./complaints.js";
import { PbxBanner } from "./health.js";
import { EmployeeView } from "./reminders.js";
import { Socket, api } from "./net.js";
import { Store } from "./store.js";
import { langSwitch, translatePage, translations } from "./i18n.js";
import { clear, errorText, errorToast, fmtDuration, h, label, setText, toast } from "./util.js";

const T = translations({
  "подключение…": "connecting…",
  "на связи": "online",
  "нет связи, переподключение…": "offline, reconnecting…",
  "Выйти": "Log out",
  "доб. {ext}": "ext. {ext}",
  "Сервер недоступен. Обновите страницу через минуту.": "The server is unreachable. Reload the page in a minute.",
  "Версия сервера новее панели: обновите страницу (Ctrl+F5)": "The server is newer than this panel: reload the page (Ctrl+F5)",
  "Не удалось подписаться на все звонки: {error}": "Could not follow every call: {error}",
  "Ошибка панели: обновите страницу": "The panel failed: reload the page",
  "Загрузка…": "Loading…",
  "Оценка разговоров": "Call review",
  "Записи, расшифровки, поиск и оценки разговоров": "Recordings, transcripts, search and call scoring",
});

const SUPPORTED_PROTOCOL = 1;

const VIEWS = { agent: AgentView, admin: AdminView, qa: QaView, employee: EmployeeView };

function header(user, ctx) {
  const conn = h("span", { class: "conn conn-connecting", "data-test": "conn-status", "data-status": "connecting" }, T("подключение…"));
  const logout = h("button", { type: "button", class: "btn btn-ghost", "data-test": "logout" }, T("Выйти"));
  logout.addEventListener("click", async () => {
    logout.disabled = true;
    ctx.socket.stop();
    try {
      await api("/api/logout", { method: "POST", redirectOn401: false });
    } catch {
      /* logged out anyway */
    }
    location.replace("/login");
  });
  const who = h("div", { class: "who", "data-test": "who" },
    h("strong", { "data-test": "user-name" }, user.display_name || user.name),
    h("span", { class: "muted" }, label("role", user.role)),
    user.extension ? h("span", { class: "ext", "data-test": "user-extension" }, T("доб. {ext}", { ext: user.extension })) : null);
  const slot = h("div", { class: "header-slot" });
  // The QA page (/qa: recordings, transcripts, search, scores) is QA's and the admins' (the server refuses others).
  const qa = user.role === "qa" || user.role === "admin"
    ? h("a", { class: "btn btn-ghost", href: "/qa", "data-test": "topbar-qa", title: T("Записи, расшифровки, поиск и оценки разговоров") },
      T("Оценка разговоров"))
    : null;
  const el = h("header", { class: "topbar" }, h("div", { class: "brand" }, "CTI Companion"), who, slot,
    h("span", { class: "spacer" }), qa, conn, langSwitch(), logout);
  return { el, slot, conn };
}

function setConn(conn, status) {
  conn.dataset.status = status;
  conn.className = `conn conn-${status}`;
  const words = { online: T("на связи"), connecting: T("подключение…"), offline: T("нет связи, переподключение…") };
  setText(conn, words[status] || words.offline);
}

async function main() {
  translatePage(T); // index.html's own texts
  const app = document.getElementById("app");
  let me;
  try {
    me = (await api("/api/me")).user;
  } catch (err) {
    if (err.status !== 401) {
      clear(app).append(h("p", { class: "fatal" }, T("Сервер недоступен. Обновите страницу через минуту.")));
    }
    return;
  }
  const store = new Store();
  store.me = me;
  const ctx = { store, socket: null, headerSlot: null, reconnected: false, canControl: false };
  let hellos = 0;
  let subscribed = false;
  let view = null;

  const socket = new Socket({
    onStatus: (status) => setConn(bar.conn, status),
    onMessage: (msg) => {
      if (msg.type === "hello") {
        hellos += 1;
        ctx.reconnected = hellos > 1;
        if (msg.protocol !== SUPPORTED_PROTOCOL && hellos === 1) {
          toast(T("Версия сервера новее панели: обновите страницу (Ctrl+F5)"), "error");
        }
        if (msg.user && msg.user.role !== me.role) {
          location.reload();
          return;
        }
        subscribed = false;
      }
      if (msg.type === "state" && msg.scope !== "all" && !subscribed && (me.role === "admin" || me.role === "qa")) {
        // Admins and QA follow every call (the server may already have subscribed us: then no request).
        subscribed = true;
        socket.request("subscribe", { scope: "all" }).catch((err) => errorToast(err, T("Не удалось подписаться на все звонки: {error}", { error: errorText(err) })));
      }
      if (msg.type === "error" && msg.id === null) {
        errorToast(msg); // the panel's words by the code; the server's text in the toast's title
        return;
      }
      store.apply(msg);
      view.onMessage(msg);
      ctx.complaints.onMessage(msg);
      view.render();
      banner.render();
    },
  });
  ctx.socket = socket;

  const bar = header(me, ctx);
  ctx.headerSlot = bar.slot;
  document.body.classList.add(`role-${me.role}`);
  ctx.complaints = new ComplaintsDesk(ctx); // complaints: the pop's one click, tasks, the list, the card (complaints.js)
  view = new (VIEWS[me.role] || QaView)(ctx);
  clear(app).append(view.el);
  ctx.complaints.mount(view);
  app.before(bar.el);
  const banner = new PbxBanner(store); // a PBX the daemon lost, in every view (health.js)
  app.before(banner.el);
  view.render();
  socket.connect();

  // Durations tick in place: every element with data-since (browser ms) shows the time since then.
  setInterval(() => {
    const now = Date.now();
    for (const el of document.querySelectorAll("[data-since]")) {
      setText(el, fmtDuration((now - Number(el.dataset.since)) / 1000));
    }
  }, 1000);
}

main().catch((err) => {
  console.error(err);
  toast(T("Ошибка панели: обновите страницу"), "error");
});

