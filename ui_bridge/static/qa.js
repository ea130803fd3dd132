// The QA page (/qa, QA users and admins): search every call's words, replay a call with its transcript following
// word by word, pin comments to moments, score the call against the centre's checklist, read the per-agent report.
//
// A call opens from a search hit, or from the journal's link (/qa#call=PBX/LINKEDID&t=SECONDS: journal.js). The
// audio is the server's GET /api/calls/PBX/LINKEDID/audio/INDEX: the <audio> element asks for it by HTTP Range, so a
// seek loads from there. The waveform is drawn here from the same file, decoded by the Web Audio API: what the
// browser can play it can draw, and the server needs no decoder (routes/qa.py). Words, names and comments go into
// the page as text (util.js h()), never as markup.

import { fmtNumber, langSwitch, translatePage, translations } from "./i18n.js";
import { api, query } from "./net.js";
import {
  busy, clear, errorText, errorToast, fmtDateTime, fmtDuration, h, setText, shownNumber, toast,
} from "./util.js";

const T = translations({
  "Загрузка…": "Loading…",
  "Контроль качества": "Quality control",
  "← Панель": "← Panel",
  "Поиск по разговорам": "Search the calls",
  "слова из разговора": "words said in the call",
  "с ": "from ",
  "по ": "to ",
  "с даты": "from date",
  "по дату": "to date",
  "оператор": "agent",
  "номер": "number",
  "очередь": "queue",
  "метка": "flag",
  "любая сторона": "either side",
  "оператор сказал": "the agent said",
  "клиент сказал": "the customer said",
  "не различено": "not told apart",
  "Найти": "Search",
  "Дата «с» позже даты «по»: поменяйте их местами": "The “from” date is after the “to” date: swap them",
  "Ничего не найдено": "Nothing found",
  "{n} звонок|{n} звонка|{n} звонков": "{n} call|{n} calls",
  "Оператор": "Agent",
  "Клиент": "Customer",
  "Не различено": "Not told apart",
  "Звонок": "Call",
  "Оператор {agent}": "Agent {agent}",
  "Очередь {queue}": "Queue {queue}",
  "Запись": "Recording",
  "Запись {n}": "Recording {n}",
  "У звонка нет записи": "The call has no recording",
  "Скорость": "Speed",
  "Волна не построена: браузер не разобрал запись": "No waveform: the browser could not decode the recording",
  "Расшифровка": "Transcript",
  "Расшифровка в очереди": "The transcript is queued",
  "Идёт расшифровка…": "Transcribing…",
  "Расшифровать не удалось: {reason}": "The transcription failed: {reason}",
  "Звонок не отправлялся на расшифровку": "The call was not sent for transcription",
  "В записи не распознано ни одного слова": "No word was recognised in the recording",
  "Комментарии": "Comments",
  "Комментариев нет": "No comments",
  "Комментарий к моменту {time}": "Comment at {time}",
  "Добавить": "Add",
  "Комментарий добавлен": "Comment added",
  "Оценка по чек-листу": "Checklist score",
  "Итого: {points} из {max}": "Total: {points} of {max}",
  "Сохранить оценку": "Save the score",
  "Оценка сохранена": "Score saved",
  "Оценок пока нет": "No scores yet",
  "{by}: {points} из {max} ({percent} %)": "{by}: {points} of {max} ({percent} %)",
  "Отчёт по операторам": "Report by agent",
  "Показать": "Show",
  "Скачать CSV": "Download CSV",
  "Оценённых звонков нет": "No scored calls",
  "Имя": "Name",
  "Звонков": "Calls",
  "Средняя, %": "Average, %",
  "Худшая, %": "Lowest, %",
  "Лучшая, %": "Highest, %",
  "Перейти к моменту {time}": "Go to {time}",
});

const SPEEDS = [0.75, 1, 1.25, 1.5, 2];
const LANES = ["agent", "customer", "unknown"];
const LANE_TITLE = { agent: T("Оператор"), customer: T("Клиент"), unknown: T("Не различено") };
const SPEAKER_WORD = { agent: T("оператор сказал"), customer: T("клиент сказал"), unknown: T("не различено") };
/** A pause longer than this (seconds) starts a new line of the transcript, even on the same side. */
const UTTERANCE_GAP = 1.5;
/** The waveform is decoded at this rate (telephone audio has nothing above 4 kHz; less memory for a long call). */
const WAVE_RATE = 8000;

/** "2026-11-24" + days, as a date input's value. */
function shiftDay(value, days) {
  const [y, m, d] = value.split("-").map(Number);
  const at = new Date(Date.UTC(y, m - 1, d + days));
  return at.toISOString().slice(0, 10);
}

function today() {
  const now = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

/** m:ss.s for a moment in a recording (a comment's, a hit's). */
function moment(seconds) {
  const s = Math.max(0, Number(seconds) || 0);
  return fmtDuration(Math.floor(s));
}

function dateFilters(prefix) {
  const since = h("input", { type: "date", "data-test": `${prefix}-since`, "aria-label": T("с даты") });
  const until = h("input", { type: "date", "data-test": `${prefix}-until`, "aria-label": T("по дату") });
  return { since, until };
}

/** The period's query parameters from two date inputs (the "to" day included); null when it runs backwards. */
function period(f) {
  if (f.since.value && f.until.value && f.since.value > f.until.value) {
    toast(T("Дата «с» позже даты «по»: поменяйте их местами"), "error");
    return null;
  }
  return { since: f.since.value, until: f.until.value ? shiftDay(f.until.value, 1) : "" };
}

// -- search ----------------------------------------------------------------------------------------------------

class Search {
  constructor(open) {
    this.open = open;
    const dates = dateFilters("qa-search");
    this.f = {
      q: h("input", { type: "search", placeholder: T("слова из разговора"), "data-test": "qa-q", size: 28 }),
      ...dates,
      agent: h("input", { type: "search", placeholder: T("оператор"), "data-test": "qa-agent", size: 8 }),
      number: h("input", { type: "search", placeholder: T("номер"), "data-test": "qa-number", size: 14 }),
      queue: h("input", { type: "search", placeholder: T("очередь"), "data-test": "qa-queue", size: 10 }),
      speaker: h("select", { "data-test": "qa-speaker" }, h("option", { value: "" }, T("любая сторона")),
        LANES.map((s) => h("option", { value: s }, SPEAKER_WORD[s]))),
      flag: h("input", { type: "search", placeholder: T("метка"), "data-test": "qa-flag", size: 10 }),
    };
    this.status = h("span", { class: "muted", "data-test": "qa-search-status" });
    this.list = h("div", { class: "qa-hits", "data-test": "qa-hits" });
    const form = h("form", { class: "filters", "data-test": "qa-search-form", onsubmit: (e) => { e.preventDefault(); this.run(); } },
      this.f.q, h("label", {}, T("с "), this.f.since), h("label", {}, T("по "), this.f.until),
      this.f.agent, this.f.number, this.f.queue, this.f.speaker, this.f.flag,
      h("button", { type: "submit", class: "btn btn-primary", "data-test": "qa-search-submit" }, T("Найти")));
    this.el = h("section", { class: "panel qa-search", "data-test": "qa-search" },
      h("div", { class: "panel-head" }, h("h2", {}, T("Поиск по разговорам")), this.status), form, this.list);
  }

  async run() {
    const range = period(this.f);
    if (!range) return;
    const f = this.f;
    const params = { q: f.q.value.trim(), ...range, agent: f.agent.value.trim(), number: f.number.value.trim(),
      queue: f.queue.value.trim(), speaker: f.speaker.value, flag: f.flag.value.trim() };
    try {
      const data = await api(`/api/transcripts/search${query(params)}`);
      this.show((data && data.hits) || []);
    } catch (err) {
      setText(this.status, errorText(err));
      errorToast(err);
    }
  }

  show(hits) {
    setText(this.status, hits.length ? T.plural("{n} звонок|{n} звонка|{n} звонков", hits.length) : "");
    clear(this.list);
    if (!hits.length) {
      this.list.append(h("p", { class: "muted", "data-test": "qa-no-hits" }, T("Ничего не найдено")));
      return;
    }
    for (const hit of hits) {
      this.list.append(h("button", {
        type: "button", class: "qa-hit", "data-test": "qa-hit", "data-linkedid": hit.linkedid, "data-pbx": hit.pbx,
        "data-at": hit.at_second, onclick: () => this.open(hit.pbx, hit.linkedid, hit.at_second),
      },
      h("span", { class: "qa-hit-when nowrap" }, fmtDateTime(hit.started_at)),
      h("span", { class: "num" }, shownNumber(hit, "caller") || ""),
      h("span", { class: "muted" }, hit.answered_by ? T("Оператор {agent}", { agent: hit.answered_by }) : ""),
      h("span", { class: "muted" }, hit.queue ? T("Очередь {queue}", { queue: hit.queue }) : ""),
      h("span", { class: "qa-hit-at num", title: T("Перейти к моменту {time}", { time: moment(hit.at_second) }) },
        moment(hit.at_second)),
      h("span", { class: `qa-hit-snippet lane-${hit.speaker || "any"}`, "data-test": "qa-hit-snippet" }, hit.snippet || ""),
      (hit.flags || []).map((flag) => h("span", { class: "chip chip-small qa-flag" }, flag))));
    }
  }
}

// -- the waveform ------------------------------------------------------------------------------------------------

class Waveform {
  constructor(seek) {
    this.seek = seek;
    this.canvas = h("canvas", { class: "qa-wave-canvas", "data-test": "qa-waveform-canvas", height: 72 });
    this.head = h("div", { class: "qa-playhead", "data-test": "qa-playhead" });
    this.marks = h("div", { class: "qa-marks" });
    this.note = h("p", { class: "muted qa-wave-note", "data-test": "qa-wave-note", hidden: true });
    this.peaks = null;
    this.duration = 0;
    this.el = h("div", { class: "qa-wave", "data-test": "qa-waveform", "data-drawn": "0" }, this.canvas, this.head, this.marks);
    this.canvas.addEventListener("click", (e) => {
      if (!this.duration) return;
      const box = this.canvas.getBoundingClientRect();
      this.seek(((e.clientX - box.left) / box.width) * this.duration);
    });
    new ResizeObserver(() => this.draw()).observe(this.el);
  }

  /** Decode the recording and keep its peaks; the duration is the decoded audio's. */
  async load(url, fallbackDuration) {
    this.duration = fallbackDuration || 0;
    this.peaks = null;
    this.note.hidden = true;
    this.el.dataset.drawn = "0";
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const bytes = await response.arrayBuffer();
      const audio = await new OfflineAudioContext(1, 1, WAVE_RATE).decodeAudioData(bytes);
      const samples = audio.getChannelData(0);
      const columns = 1000;
      const step = Math.max(1, Math.floor(samples.length / columns));
      const peaks = new Float32Array(Math.ceil(samples.length / step));
      for (let i = 0; i < peaks.length; i++) {
        let peak = 0;
        for (let j = i * step, end = Math.min(samples.length, j + step); j < end; j++) {
          const v = Math.abs(samples[j]);
          if (v > peak) peak = v;
        }
        peaks[i] = peak;
      }
      this.peaks = peaks;
      this.duration = audio.duration;
    } catch (err) {
      console.info("waveform:", err);
      setText(this.note, T("Волна не построена: браузер не разобрал запись"));
      this.note.hidden = false;
    }
    this.draw();
    return this.duration;
  }

  draw() {
    const width = Math.max(1, this.el.clientWidth);
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(72 * ratio);
    const ctx = this.canvas.getContext("2d");
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.peaks) return;
    const top = Math.max(...this.peaks, 0.01);
    const mid = this.canvas.height / 2;
    ctx.fillStyle = "#2458c6";
    for (let x = 0; x < this.canvas.width; x++) {
      const peak = this.peaks[Math.floor((x / this.canvas.width) * this.peaks.length)] / top;
      const half = Math.max(1, peak * (mid - 2));
      ctx.fillRect(x, mid - half, 1, half * 2);
    }
    this.el.dataset.drawn = "1";
  }

  /** Where the player is, as a line over the wave. */
  at(seconds) {
    const part = this.duration ? Math.min(1, Math.max(0, seconds / this.duration)) : 0;
    this.head.style.left = `${(part * 100).toFixed(3)}%`;
  }

  /** The comments as marks on the wave (a click seeks there). */
  mark(comments) {
    clear(this.marks);
    if (!this.duration) return;
    for (const c of comments) {
      const mark = h("button", { type: "button", class: "qa-mark", "data-test": "qa-marker", "data-at": c.at_second,
        title: `${moment(c.at_second)} ${c.text}`, onclick: () => this.seek(c.at_second) });
      mark.style.left = `${Math.min(100, (c.at_second / this.duration) * 100).toFixed(3)}%`;
      this.marks.append(mark);
    }
  }
}

// -- the call ------------------------------------------------------------------------------------------------------

/** The transcript's words as lines of speech in time order, each in its speaker's lane (column). */
function utterances(words) {
  const lines = [];
  for (const [index, w] of words.entries()) {
    const last = lines[lines.length - 1];
    if (last && last.speaker === w.speaker && w.start - last.end <= UTTERANCE_GAP) {
      last.words.push([index, w]);
      last.end = w.end;
    } else {
      lines.push({ speaker: w.speaker, start: w.start, end: w.end, words: [[index, w]] });
    }
  }
  return lines;
}

class CallView {
  constructor(page) {
    this.page = page;
    this.audio = h("audio", { controls: true, preload: "none", class: "qa-audio", "data-test": "qa-audio" });
    this.wave = new Waveform((t) => this.seek(t, false));
    this.words = [];
    this.wordEls = [];
    this.current = -1;
    this.comments = [];
    this.head = h("div", { "data-test": "qa-call-head" });
    this.recordingPick = h("select", { "data-test": "qa-recording", "aria-label": T("Запись"), hidden: true,
      onchange: () => this.useRecording(Number(this.recordingPick.value)) });
    this.speeds = h("span", { class: "qa-speeds", role: "group", "aria-label": T("Скорость") },
      h("span", { class: "muted" }, T("Скорость")),
      SPEEDS.map((v) => h("button", { type: "button", class: "btn btn-small qa-speed", "data-test": "qa-speed",
        "data-speed": v, "aria-pressed": String(v === 1), onclick: () => this.speed(v) }, `${v}×`)));
    this.noAudio = h("p", { class: "muted", "data-test": "qa-no-audio", hidden: true }, T("У звонка нет записи"));
    this.transcriptState = h("p", { class: "muted", "data-test": "qa-transcript-state", hidden: true });
    this.lanes = h("div", { class: "qa-lanes", "data-test": "qa-transcript" });
    this.commentList = h("ul", { class: "qa-comments", "data-test": "qa-comments" });
    this.commentText = h("textarea", { rows: 2, maxlength: 2000, "data-test": "qa-comment-text", class: "qa-comment-text" });
    this.commentLabel = h("span", { class: "muted", "data-test": "qa-comment-at" });
    this.commentAdd = h("button", { type: "button", class: "btn", "data-test": "qa-comment-add",
      onclick: () => busy(this.commentAdd, () => this.addComment()) }, T("Добавить"));
    this.scoreForm = h("div", { class: "qa-score-form", "data-test": "qa-score-form" });
    this.scoreTotal = h("div", { class: "qa-score-total", "data-test": "qa-score-total" });
    this.scoreSave = h("button", { type: "button", class: "btn btn-primary", "data-test": "qa-score-save",
      onclick: () => busy(this.scoreSave, () => this.saveScore()) }, T("Сохранить оценку"));
    this.scoreList = h("ul", { class: "qa-scores", "data-test": "qa-scores" });
    this.el = h("section", { class: "panel qa-call", "data-test": "qa-call", hidden: true },
      this.head,
      h("div", { class: "qa-player" }, this.recordingPick, this.audio, this.speeds),
      this.noAudio, this.wave.el, this.wave.note,
      h("div", { class: "qa-call-body" },
        h("div", { class: "qa-transcript-box" }, h("h2", {}, T("Расшифровка")), this.transcriptState, this.lanes),
        h("div", { class: "qa-side" },
          h("div", { class: "qa-box" }, h("h2", {}, T("Комментарии")), this.commentList,
            h("div", { class: "qa-comment-new" }, this.commentLabel, this.commentText, this.commentAdd)),
          h("div", { class: "qa-box" }, h("h2", {}, T("Оценка по чек-листу")), this.scoreForm, this.scoreTotal,
            this.scoreSave, this.scoreList))));
    this.audio.addEventListener("play", () => this.follow());
    this.audio.addEventListener("seeked", () => this.tick());
    this.audio.addEventListener("timeupdate", () => this.tick());
    this.audio.addEventListener("loadedmetadata", () => {
      if (!this.wave.duration && Number.isFinite(this.audio.duration)) {
        this.wave.duration = this.audio.duration;
        this.wave.mark(this.comments);
      }
    });
  }

  async open(pbx, linkedid, at) {
    this.call = { pbx, linkedid };
    this.el.hidden = false;
    this.el.dataset.linkedid = linkedid;
    this.el.dataset.pbx = pbx;
    const base = `/api/calls/${encodeURIComponent(pbx)}/${encodeURIComponent(linkedid)}`;
    this.base = base;
    const data = await api(`${base}/transcript`);
    this.data = data;
    this.showHead(data);
    this.showTranscript(data);
    const recordings = data.recordings || [];
    // The recording to play: the call's mix or stereo file; a side's own file (-in / -out) only when it is all there is.
    const mix = recordings.find((r) => r.layout === "mono" || r.layout === "stereo")
      || recordings.find((r) => !/-(in|out)\.[a-z0-9]+$/i.test(r.name)) || recordings[0];
    clear(this.recordingPick).append(...recordings.map((r) => h("option", { value: r.index },
      recordings.length > 1 ? T("Запись {n}", { n: r.index + 1 }) : T("Запись"))));
    this.recordingPick.hidden = recordings.length < 2;
    this.noAudio.hidden = Boolean(mix);
    this.audio.hidden = !mix;
    await Promise.all([this.loadComments(), this.loadScores()]);
    if (mix) {
      this.recordingPick.value = String(mix.index);
      await this.useRecording(mix.index);
      if (at) this.seek(Number(at), false);
    }
    this.el.scrollIntoView({ block: "start" });
  }

  async useRecording(index) {
    const recording = (this.data.recordings || []).find((r) => r.index === index);
    if (!recording) return;
    this.audio.src = recording.url;
    this.wave.at(0);
    const fallback = (this.data.transcript && this.data.transcript.duration) || 0;
    await this.wave.load(recording.url, fallback);
    this.wave.mark(this.comments);
  }

  showHead(data) {
    const c = data.call;
    clear(this.head).append(h("div", { class: "qa-call-head" },
      h("h2", {}, T("Звонок"), " ", h("span", { class: "num", "data-test": "qa-call-caller" }, shownNumber(c, "caller") || "")),
      h("span", { class: "nowrap" }, fmtDateTime(c.started_at)),
      c.answered_by ? h("span", { "data-test": "qa-call-agent" }, T("Оператор {agent}", { agent: c.answered_by })) : null,
      c.queue ? h("span", {}, T("Очередь {queue}", { queue: c.queue })) : null,
      c.caller_name ? h("span", { class: "muted" }, c.caller_name) : null,
      (data.flags || []).map((flag) => h("span", { class: "chip qa-flag", "data-test": "qa-call-flag" }, flag))));
  }

  showTranscript(data) {
    const transcript = data.transcript;
    this.words = transcript ? transcript.words : [];
    this.wordEls = [];
    this.current = -1;
    clear(this.lanes);
    const job = data.job;
    let state = "";
    if (!transcript) {
      if (!job) state = T("Звонок не отправлялся на расшифровку");
      else if (job.state === "queued") state = T("Расшифровка в очереди");
      else if (job.state === "running") state = T("Идёт расшифровка…");
      else if (job.state === "failed") state = T("Расшифровать не удалось: {reason}", { reason: job.reason || "" });
    } else if (!this.words.length) {
      state = T("В записи не распознано ни одного слова");
    }
    setText(this.transcriptState, state);
    this.transcriptState.hidden = !state;
    this.transcriptState.dataset.state = job ? job.state : "none";
    if (!this.words.length) return;
    const lanes = LANES.filter((s) => s !== "unknown" || this.words.some((w) => w.speaker === "unknown"));
    this.lanes.dataset.lanes = String(lanes.length);
    this.lanes.append(h("div", { class: "qa-lane-heads" },
      lanes.map((s) => h("div", { class: `qa-lane-head lane-${s}` }, LANE_TITLE[s]))));
    for (const line of utterances(this.words)) {
      const cells = lanes.map((s) => {
        if (s !== line.speaker) return h("div", { class: "qa-cell" });
        return h("div", { class: `qa-cell qa-utterance lane-${s}`, "data-test": `qa-lane-${s}` },
          h("button", { type: "button", class: "qa-line-at num", onclick: () => this.seek(line.start, true) }, moment(line.start)),
          line.words.map(([index, w]) => {
            const el = h("span", { class: "qa-word", "data-test": "qa-word", "data-index": index, "data-start": w.start,
              "data-end": w.end, "data-speaker": w.speaker, title: `${moment(w.start)} · ${Math.round(w.conf * 100)}%`,
              role: "button", tabindex: 0, onclick: () => this.seek(w.start, true),
              onkeydown: (e) => { if (e.key === "Enter") this.seek(w.start, true); } }, w.text);
            this.wordEls[index] = el;
            return [el, " "];
          }));
      });
      this.lanes.append(h("div", { class: "qa-row" }, cells));
    }
  }

  /** Go to ``seconds`` of the recording; ``play``: and listen from there (a click on a word). */
  seek(seconds, play) {
    if (this.audio.hidden) return;
    this.audio.currentTime = Math.max(0, seconds);
    this.tick();
    if (play && this.audio.paused) this.audio.play().catch((err) => console.info("play:", err));
  }

  speed(value) {
    this.audio.playbackRate = value;
    for (const b of this.speeds.querySelectorAll("[data-speed]")) b.setAttribute("aria-pressed", String(Number(b.dataset.speed) === value));
  }

  /** While playing, the current word follows the sound (every frame, not only at the 4 Hz timeupdate). */
  follow() {
    const step = () => {
      this.tick();
      if (!this.audio.paused && !this.audio.ended) requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  }

  tick() {
    const t = this.audio.currentTime;
    this.wave.at(t);
    setText(this.commentLabel, T("Комментарий к моменту {time}", { time: moment(t) }));
    // The word being said: the last one started at or before t (words are in time order), while it lasts.
    let lo = 0;
    let hi = this.words.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.words[mid].start <= t) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (found >= 0 && t > this.words[found].end + 0.3) found = -1;
    if (found === this.current) return;
    if (this.current >= 0 && this.wordEls[this.current]) {
      this.wordEls[this.current].classList.remove("qa-word-current");
      delete this.wordEls[this.current].dataset.current;
    }
    this.current = found;
    const el = found >= 0 ? this.wordEls[found] : null;
    if (el) {
      el.classList.add("qa-word-current");
      el.dataset.current = "1";
      if (!this.audio.paused) el.scrollIntoView({ block: "nearest" });
    }
  }

  // -- comments ----------------------------------------------------------------------------------------------------

  async loadComments() {
    const data = await api(`${this.base}/comments`);
    this.comments = (data && data.comments) || [];
    clear(this.commentList);
    if (!this.comments.length) this.commentList.append(h("li", { class: "muted" }, T("Комментариев нет")));
    for (const c of this.comments) {
      this.commentList.append(h("li", { class: "qa-comment", "data-test": "qa-comment", "data-at": c.at_second },
        h("button", { type: "button", class: "btn btn-small num", "data-test": "qa-comment-seek",
          onclick: () => this.seek(c.at_second, false) }, moment(c.at_second)),
        h("span", { class: "qa-comment-body" }, c.text),
        h("span", { class: "sub" }, `${c.by} · ${fmtDateTime(c.at)}`)));
    }
    this.wave.mark(this.comments);
  }

  async addComment() {
    const text = this.commentText.value.trim();
    if (!text) {
      this.commentText.focus();
      return;
    }
    await api(`${this.base}/comments`, { method: "POST", body: { at_second: Math.round(this.audio.currentTime * 10) / 10, text } });
    this.commentText.value = "";
    toast(T("Комментарий добавлен"));
    await this.loadComments();
  }

  // -- scores ------------------------------------------------------------------------------------------------------

  async loadScores() {
    const checklist = this.page.checklist;
    const data = await api(`${this.base}/scores`);
    const scores = (data && data.scores) || [];
    const mine = scores.find((s) => s.by === this.page.me && s.checklist === checklist.name);
    clear(this.scoreForm);
    this.inputs = new Map();
    for (const item of checklist.items) {
      const value = mine && mine.answers[item.key] !== undefined ? mine.answers[item.key] : 0;
      let input;
      if (item.kind === "yes_no") {
        input = h("input", { type: "checkbox", "data-test": "qa-answer", "data-key": item.key, checked: value === 1 });
      } else {
        input = h("select", { "data-test": "qa-answer", "data-key": item.key },
          Array.from({ length: item.points + 1 }, (_, n) => h("option", { value: n }, String(n))));
        input.value = String(value);
      }
      input.addEventListener("change", () => this.total());
      this.inputs.set(item.key, input);
      this.scoreForm.append(h("label", { class: "qa-item", "data-test": "qa-item" }, input,
        h("span", { class: "qa-item-title" }, item.title),
        h("span", { class: "muted num" }, item.weight === 1 ? "" : `×${item.weight}`)));
    }
    this.total();
    clear(this.scoreList);
    if (!scores.length) this.scoreList.append(h("li", { class: "muted" }, T("Оценок пока нет")));
    for (const s of scores) {
      this.scoreList.append(h("li", { "data-test": "qa-score" }, T("{by}: {points} из {max} ({percent} %)", {
        by: s.by, points: fmtNumber(s.points), max: fmtNumber(s.max_points), percent: fmtNumber(s.percent) })));
    }
  }

  answers() {
    const out = {};
    for (const [key, input] of this.inputs) out[key] = input.type === "checkbox" ? (input.checked ? 1 : 0) : Number(input.value);
    return out;
  }

  total() {
    const answers = this.answers();
    const points = this.page.checklist.items.reduce((sum, item) => sum + answers[item.key] * item.weight, 0);
    setText(this.scoreTotal, T("Итого: {points} из {max}", { points, max: this.page.checklist.max_points }));
    this.scoreTotal.dataset.points = String(points);
  }

  async saveScore() {
    await api(`${this.base}/scores`, { method: "POST", body: { answers: this.answers() } });
    toast(T("Оценка сохранена"));
    await this.loadScores();
  }
}

// -- the per-agent report ----------------------------------------------------------------------------------------

class Report {
  constructor() {
    this.f = dateFilters("qa-report");
    this.f.until.value = today();
    this.f.since.value = `${today().slice(0, 8)}01`;
    this.csv = h("a", { class: "btn", "data-test": "qa-report-csv", href: "#", download: "qa-agents.csv" }, T("Скачать CSV"));
    this.box = h("div", { class: "table-wrap" });
    this.el = h("section", { class: "panel qa-report", "data-test": "qa-report" },
      h("div", { class: "panel-head" }, h("h2", {}, T("Отчёт по операторам"))),
      h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); this.load(); } },
        h("label", {}, T("с "), this.f.since), h("label", {}, T("по "), this.f.until),
        h("button", { type: "submit", class: "btn btn-primary", "data-test": "qa-report-show" }, T("Показать")), this.csv),
      this.box);
  }

  async load() {
    const range = period(this.f);
    if (!range) return;
    this.csv.href = `/api/qa/report${query({ ...range, format: "csv" })}`;
    try {
      const data = await api(`/api/qa/report${query(range)}`);
      const rows = (data && data.agents) || [];
      const head = [T("Оператор"), T("Имя"), T("Звонков"), T("Средняя, %"), T("Худшая, %"), T("Лучшая, %")];
      clear(this.box).append(h("table", { class: "table", "data-test": "qa-report-table" },
        h("thead", {}, h("tr", {}, head.map((t) => h("th", {}, t)))),
        h("tbody", {}, rows.length ? rows.map((r) => h("tr", { "data-test": "qa-report-row", "data-agent": r.agent },
          h("td", {}, r.agent), h("td", {}, r.name || ""), h("td", { class: "right" }, r.calls),
          h("td", { class: "right", "data-test": "qa-report-average" }, fmtNumber(r.average)),
          h("td", { class: "right" }, fmtNumber(r.lowest)), h("td", { class: "right" }, fmtNumber(r.highest))))
          : h("tr", { class: "empty" }, h("td", { colspan: head.length }, T("Оценённых звонков нет"))))));
    } catch (err) {
      errorToast(err);
    }
  }
}

// -- the page ------------------------------------------------------------------------------------------------------

class QaPage {
  constructor(root) {
    this.root = root;
  }

  async start() {
    translatePage(T);
    const [me, checklist] = await Promise.all([api("/api/me"), api("/api/qa/checklist")]);
    this.me = me && me.user && me.user.name;
    this.checklist = checklist;
    this.search = new Search((pbx, linkedid, at) => this.openCall(pbx, linkedid, at));
    this.call = new CallView(this);
    this.report = new Report();
    const top = h("header", { class: "topbar" }, h("div", { class: "brand" }, "CTI Companion"),
      h("h1", { class: "qa-title" }, T("Контроль качества")),
      h("a", { class: "btn btn-ghost", href: "/", "data-test": "qa-back" }, T("← Панель")),
      h("span", { class: "spacer" }), h("span", { class: "muted", "data-test": "qa-me" }, this.me || ""), langSwitch());
    document.body.prepend(top);
    clear(this.root).append(this.search.el, this.call.el, this.report.el);
    window.addEventListener("hashchange", () => this.fromHash());
    await this.fromHash();
    this.report.load();
  }

  /** #call=PBX/LINKEDID&t=SECONDS (the journal's link, a hit): open that call at that moment. */
  async fromHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    const call = params.get("call");
    if (!call || !call.includes("/")) return;
    const slash = call.indexOf("/");
    await this.openCall(call.slice(0, slash), call.slice(slash + 1), Number(params.get("t")) || 0, false);
  }

  async openCall(pbx, linkedid, at, remember = true) {
    if (remember) history.replaceState(null, "", `#${new URLSearchParams({ call: `${pbx}/${linkedid}`, t: String(at || 0) })}`);
    try {
      await this.call.open(pbx, linkedid, at);
    } catch (err) {
      errorToast(err);
    }
  }
}

const root = document.getElementById("qa");
new QaPage(root).start().catch((err) => {
  clear(root).append(h("p", { class: "fatal", "data-test": "qa-fatal" }, errorText(err)));
});
