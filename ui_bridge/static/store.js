// What the panel knows right now: calls in progress and agents' states, kept from `state` + events.
// Calls are keyed by (PBX, linkedid) and agents by (PBX, extension): util.js callKey/agentKey.

import { agentKey, callKey, setPbxs } from "./util.js";

const SANE_AGE_MS = 12 * 3600 * 1000;

export class Store {
  constructor() {
    this.me = null;
    this.scope = null;
    this.calls = new Map(); // callKey -> call (see upsertCall)
    this.agents = new Map(); // agentKey -> agent.state message
    this.serverOffsetMs = 0; // server clock - browser clock, from hello.server_time
    this.links = new Map(); // PBX id -> {connected, since}: the daemon's link to it (hello.pbxs, pbx.status)
  }

  /**
   * Browser time (ms) of a server timestamp, for ticking durations. When the server's clock and the
   * call's times do not agree (a replayed trace), count from when the panel first heard of it.
   */
  localMs(iso, fallback = Date.now()) {
    const at = iso ? Date.parse(iso) : NaN;
    if (Number.isNaN(at)) return fallback;
    const age = Date.now() + this.serverOffsetMs - at;
    return age >= -5000 && age < SANE_AGE_MS ? Date.now() - Math.max(0, age) : fallback;
  }

  apply(msg) {
    switch (msg.type) {
      case "hello": {
        this.me = msg.user;
        setPbxs(msg.pbxs);
        this.links = new Map((msg.pbxs || []).filter((p) => typeof p.connected === "boolean")
          .map((p) => [p.id, { connected: p.connected, since: p.since || null }]));
        const server = Date.parse(msg.server_time);
        this.serverOffsetMs = Number.isNaN(server) ? 0 : server - Date.now();
        break;
      }
      case "state": {
        this.scope = msg.scope;
        const old = this.calls;
        this.calls = new Map();
        for (const c of msg.calls || []) this.upsertCall(c, old.get(callKey(c)));
        this.agents = new Map((msg.agents || []).map((a) => [agentKey(a), a]));
        break;
      }
      case "call.ringing": {
        const call = this.upsertCall(msg, this.calls.get(callKey(msg)), { keepState: true });
        call.agents.set(msg.extension, { extension: msg.extension, channel: msg.channel, state: "ringing" });
        break;
      }
      case "call.leg_ended": {
        const call = this.calls.get(callKey(msg));
        if (call) call.agents.delete(msg.extension);
        break;
      }
      case "call.answered": {
        const call = this.calls.get(callKey(msg));
        if (call) {
          call.state = "talking";
          if (!call.answered_by) call.answered_by = msg.answered_by;
          if (!call.answered_at) {
            call.answered_at = msg.at;
            call.answeredMs = this.localMs(msg.at);
          }
          const leg = call.agents.get(msg.answered_by);
          if (leg) {
            leg.state = "talking";
            leg.answeredMs = this.localMs(msg.at);
          }
        }
        break;
      }
      case "call.transferred": {
        const call = this.calls.get(callKey(msg));
        if (call) call.transferred_to = msg.transferred_to;
        break;
      }
      case "call.card":
        this.setCard(callKey(msg), msg.card);
        break;
      case "call.ended":
        this.calls.delete(callKey(msg));
        break;
      case "agent.state":
        this.agents.set(agentKey(msg), msg);
        break;
      case "pbx.status":
        this.links.set(msg.pbx, { connected: msg.connected, since: msg.since || null });
        break;
      default:
        break;
    }
  }

  /** A call's caller card changed (``call.card``, or the reply to an attach); ``key``: its callKey. */
  setCard(key, card) {
    const call = this.calls.get(key);
    if (call && card) call.card = card;
    return call;
  }

  upsertCall(src, old, { keepState = false } = {}) {
    const call = old || { agents: new Map(), transferred_to: null };
    for (const key of ["linkedid", "pbx", "direction", "caller", "caller_name", "called", "caller_display",
      "called_display", "queue", "card"]) {
      if (src[key] !== undefined && (src[key] !== null || call[key] === undefined)) call[key] = src[key];
    }
    call.started_at = call.started_at || src.started_at || src.at || null;
    call.startedMs = call.startedMs || this.localMs(call.started_at);
    if (!keepState || !call.state) call.state = src.state || "ringing";
    if (src.answered_at !== undefined && src.answered_at !== null) {
      call.answered_at = src.answered_at;
      call.answeredMs = call.answeredMs || this.localMs(src.answered_at);
    }
    if (src.answered_by) call.answered_by = src.answered_by;
    if (Array.isArray(src.agents)) {
      call.agents = new Map(src.agents.filter((l) => l.state !== "ended").map((l) => [l.extension, { ...l }]));
    }
    call.key = callKey(call);
    this.calls.set(call.key, call);
    return call;
  }

  /** The PBXs the daemon has lost now: [{pbx, since}], in hello's order (health.js's banner). */
  lostPbxs() {
    return [...this.links].filter(([, link]) => link.connected === false).map(([pbx, link]) => ({ pbx, since: link.since }));
  }

  /** A call of a PBX the daemon has lost: what the boards show of it may be out of date (health.js). */
  uncertain(call) {
    const link = this.links.get(call.pbx);
    return Boolean(link && link.connected === false);
  }

  /** My own state as an agent (on my PBX: an agent of several PBXs, the first one that reports it). */
  myAgent() {
    const ext = this.me && this.me.extension;
    return ext ? [...this.agents.values()].find((a) => a.extension === ext) : undefined;
  }

  /** Calls my extension is on (ringing or talking), newest first. */
  myCalls() {
    const ext = this.me && this.me.extension;
    if (!ext) return [];
    return [...this.calls.values()]
      .filter((c) => c.agents.has(ext))
      .sort((a, b) => b.startedMs - a.startedMs);
  }
}
