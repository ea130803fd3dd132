// The agent never misses a pop: while the panel is in the background (another tab or window in front, the
// browser minimised) and the agent's phone rings, a browser notification (the caller's number and card name; a
// click brings the panel to the front) and a ring sound, until the call is answered or ended or the panel is in
// front again. The tab's title changes too (agent.js).
//
// Notifications need the agent's permission, asked once on a click ("Включить уведомления", shown while the
// browser has not been asked yet; it remembers the answer), and a secure page (HTTPS, or the panel opened as
// localhost). Refused: said once, quietly; the sound still plays. Browsers play a sound only on a page the user
// has clicked on or typed into since it loaded (their autoplay rule): logging in and any click in the panel do.

import { translations } from "./i18n.js";
import { h, toast } from "./util.js";

const T = translations({
  "Включить уведомления": "Turn on notifications",
  "Показывать уведомление, когда звонит телефон, а панель в фоне":
    "Show a notification when your phone rings while the panel is in the background",
  "Звонит {number}": "{number} is calling",
  "номер скрыт": "withheld number",
  "Уведомления о звонках запрещены в этом браузере: пока панель в фоне, о звонке скажет только звук. Разрешить их можно в настройках сайта.":
    "Call notifications are blocked in this browser: while the panel is in the background only the sound tells of a call. You can allow them in the site's settings.",
});

/** The browser keeps the permission; this only remembers that the agent was told it is refused. */
const DENIED_TOLD = "cti.notifyDeniedTold";
const RING_FILE = "/static/ring.wav";

function supported() {
  return typeof window.Notification === "function";
}

function inBackground() {
  return document.visibilityState !== "visible";
}

export class RingAlert {
  /** ``describe(call)``: {number, name} of the party calling, as the pop shows them. */
  constructor(describe) {
    this.describe = describe;
    this.audio = h("audio", { src: RING_FILE, loop: true, preload: "auto", "data-test": "ring-audio",
      "data-playing": "false" });
    this.audio.addEventListener("playing", () => { this.audio.dataset.playing = "true"; });
    this.audio.addEventListener("pause", () => { this.audio.dataset.playing = "false"; });
    this.enable = h("button", { type: "button", class: "btn btn-small", "data-test": "notify-enable", hidden: true,
      title: T("Показывать уведомление, когда звонит телефон, а панель в фоне"), onclick: () => this.ask() },
    T("Включить уведомления"));
    this.el = h("span", { class: "notify-control" }, this.enable, this.audio);
    this.calls = []; // the agent's calls ringing now
    this.alerts = new Map(); // callKey -> {notification}: each ringing call is notified at most once
    document.addEventListener("visibilitychange", () => this.refresh());
    this.showControl();
    this.tellDenied();
  }

  permission() {
    return supported() ? Notification.permission : "unsupported";
  }

  showControl() {
    this.enable.hidden = this.permission() !== "default";
  }

  async ask() {
    this.enable.disabled = true;
    try {
      await Notification.requestPermission();
    } catch {
      /* the permission read below says what came of it */
    } finally {
      this.enable.disabled = false;
    }
    this.showControl();
    this.tellDenied();
  }

  /** Refused notifications: said once per browser, as a quiet note (the sound still plays). */
  tellDenied() {
    if (this.permission() !== "denied") return;
    try {
      if (localStorage.getItem(DENIED_TOLD)) return;
      localStorage.setItem(DENIED_TOLD, "1");
    } catch {
      /* no storage: said once per page */
      if (this.toldDenied) return;
      this.toldDenied = true;
    }
    toast(T("Уведомления о звонках запрещены в этом браузере: пока панель в фоне, о звонке скажет только звук. Разрешить их можно в настройках сайта."));
  }

  /** The agent's calls ringing now (agent.js, at every render). */
  update(calls) {
    this.calls = calls;
    this.refresh();
  }

  refresh() {
    const ringing = new Map(this.calls.map((call) => [call.key, call]));
    const away = inBackground();
    for (const [key, alert] of this.alerts) {
      if (!ringing.has(key)) { // answered, ended, or rang off
        close(alert.notification);
        this.alerts.delete(key);
      } else if (!away) { // the panel is in front: the pop says it all
        close(alert.notification);
        alert.notification = null;
      }
    }
    for (const [key, call] of ringing) {
      if (this.alerts.has(key)) continue;
      if (!away) continue; // in front: no notification for this call (unless the panel goes to the background)
      this.alerts.set(key, { notification: this.notify(call) });
    }
    this.ring(away && ringing.size > 0);
  }

  notify(call) {
    if (this.permission() !== "granted") return null;
    const party = this.describe(call);
    const name = (call.card && call.card.name) || party.name || "";
    try {
      const notification = new Notification(T("Звонит {number}", { number: party.number || T("номер скрыт") }), {
        body: name, tag: `cti-call-${call.key}`, requireInteraction: true,
      });
      notification.onclick = () => {
        window.focus();
        notification.close();
      };
      return notification;
    } catch {
      return null; // a browser that shows notifications only from a service worker: the sound and the title remain
    }
  }

  ring(on) {
    const audio = this.audio;
    if (on && audio.paused) {
      const played = audio.play();
      if (played) {
        played.catch((err) => { // the autoplay rule (no click in the page yet), or paused again meanwhile
          if (err && err.name === "NotAllowedError") audio.dataset.playing = "blocked";
        });
      }
    } else if (!on && !audio.paused) {
      audio.pause();
      audio.currentTime = 0;
    }
  }
}

function close(notification) {
  if (notification) notification.close();
}
