// The two ways to the server: the JSON HTTP API and the WebSocket (see ui_bridge/messages.py).
// Errors are {code, message, status}: the panel words them by ``code`` (util.js errorText); ``message`` is the
// server's text, or one of ours below, for developers (a toast's title, the console), so it is English.

/** The pages a login may return to (``next``): this site's own, never another address (ui_bridge/routes/pages.py). */
export const RETURN_PAGES = ["/", "/qa", "/wallboard"];

/** To the login form, which comes back to this page once logged in; ``reason`` ("closed": the server ended the live
 * connection) is shown there, and stops the login page from sending a still-valid session straight back to the
 * panel (no redirect loop). */
export function goToLogin(reason = "") {
  if (location.pathname === "/login") return;
  const params = new URLSearchParams();
  if (reason) params.set("reason", reason);
  if (location.pathname !== "/" && RETURN_PAGES.includes(location.pathname)) params.set("next", location.pathname);
  const query = params.toString();
  location.replace(query ? `/login?${query}` : "/login");
}

export class ApiError extends Error {
  /** ``details``: the server's whole ``error`` object (what else it says: complaints.js reads its fields). */
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** fetch JSON from the API; a 401 sends the browser to the login page. */
export async function api(path, { method = "GET", body, redirectOn401 = true } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "disconnected", "the server cannot be reached");
  }
  if (response.status === 401 && redirectOn401) {
    goToLogin();
    throw new ApiError(401, "unauthorized", "log in first");
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code || `http_${response.status}`,
      error.message || `HTTP ${response.status}`, error);
  }
  return data;
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") q.set(key, String(value));
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

// -- WebSocket -----------------------------------------------------------------------------------------------

const REQUEST_TIMEOUT_MS = 15000;
const PING_EVERY_MS = 30000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;

/**
 * One WebSocket to /ws that reconnects with back-off. onMessage(msg) gets every server message except
 * replies/errors to our own requests (those settle the promise request() returned);
 * onStatus("connecting" | "online" | "offline") reports the connection.
 */
export class Socket {
  constructor({ onMessage, onStatus }) {
    this.onMessage = onMessage;
    this.onStatus = onStatus || (() => {});
    this.ws = null;
    this.pending = new Map();
    this.nextId = 1;
    this.backoff = BACKOFF_MIN_MS;
    this.timer = null;
    this.pingTimer = null;
    this.stopped = false;
    this.sawHello = false;
  }

  get url() {
    return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  }

  connect() {
    if (this.stopped) return;
    this.onStatus("connecting");
    this.sawHello = false;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("message", (event) => this.receive(event.data));
    ws.addEventListener("close", (event) => this.closed(ws, event));
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.pingTimer);
    if (this.ws) this.ws.close(1000);
  }

  receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (!msg || typeof msg !== "object") return;
    if ((msg.type === "reply" || msg.type === "error") && msg.id !== null && this.pending.has(msg.id)) {
      const { resolve, reject, timer } = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      clearTimeout(timer);
      if (msg.type === "reply") resolve(msg.data || {});
      else reject({ code: msg.code, message: msg.message, by: msg.by || null });
      return;
    }
    if (msg.type === "hello") {
      this.sawHello = true;
      this.backoff = BACKOFF_MIN_MS;
      this.onStatus("online");
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.keepAlive(), PING_EVERY_MS);
    }
    this.onMessage(msg);
  }

  keepAlive() {
    this.request("ping").catch(() => {
      // No answer in time: the connection is dead even if the browser has not noticed.
      if (this.ws) this.ws.close();
    });
  }

  async closed(ws, event) {
    if (ws !== this.ws) return;
    this.ws = null;
    clearInterval(this.pingTimer);
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject({ code: "disconnected", message: "the connection dropped" });
    }
    this.pending.clear();
    if (this.stopped) return;
    this.onStatus("offline");
    if (event.code === 1008) {
      // Not allowed, or the session ended (logged out elsewhere): log in again.
      goToLogin("closed");
      return;
    }
    if (!this.sawHello) {
      // The handshake was refused (a browser only sees 1006): find out whether we are still logged in.
      try {
        await api("/api/me");
      } catch {
        /* api() redirects on 401; anything else: just retry later */
      }
    }
    const delay = this.backoff * (0.75 + Math.random() * 0.5);
    this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Send a request; resolves with the reply's data or rejects with {code, message}. */
  request(type, fields = {}) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject({ code: "disconnected", message: "not connected; try again in a few seconds" });
    }
    const id = `r${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject({ code: "timeout", message: "no answer in time" });
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify({ type, id, ...fields }));
    });
  }
}
