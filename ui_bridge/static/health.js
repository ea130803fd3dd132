// PBX health in every view: the daemon's link to each PBX (hello's `pbxs`, then `pbx.status`), shown as a banner
// while a PBX is lost, and the mark the boards put on a call of a lost PBX (its state may be out of date until the
// daemon is back and has resynced: then the calls that ended meanwhile get their call.ended, the mark goes).
//
// Not the browser's own link to the server: that is the header's indicator (panel.js, `conn-status`). Here the
// server is reachable and says it cannot see the PBX.

import { translations } from "./i18n.js";
import { fmtTime, h, manyPbxs, pbxName } from "./util.js";

const T = translations({
  "Нет связи с АТС «{name}» с {time} — звонки на табло могут быть неточны":
    "No link to the PBX “{name}” since {time}: the calls shown may be out of date",
  "Нет связи с АТС с {time} — звонки на табло могут быть неточны":
    "No link to the PBX since {time}: the calls shown may be out of date",
  "Нет связи с АТС «{name}» — звонки на табло могут быть неточны":
    "No link to the PBX “{name}”: the calls shown may be out of date",
  "Нет связи с АТС — звонки на табло могут быть неточны": "No link to the PBX: the calls shown may be out of date",
  "неточно": "uncertain",
  "Нет связи с АТС: этот звонок мог уже закончиться или измениться":
    "No link to the PBX: this call may have ended or changed meanwhile",
});

/** The line of the banner for one lost PBX: its name when the user sees several, since when (the PBX's clock). */
function lostText(pbx, since) {
  const time = fmtTime(since);
  if (manyPbxs()) {
    const name = pbxName(pbx);
    return time ? T("Нет связи с АТС «{name}» с {time} — звонки на табло могут быть неточны", { name, time })
      : T("Нет связи с АТС «{name}» — звонки на табло могут быть неточны", { name });
  }
  return time ? T("Нет связи с АТС с {time} — звонки на табло могут быть неточны", { time })
    : T("Нет связи с АТС — звонки на табло могут быть неточны");
}

/** The banner under the header, one line per lost PBX; hidden while every PBX is connected. */
export class PbxBanner {
  constructor(store) {
    this.store = store;
    this.shown = ""; // what is drawn now, to redraw only on a change
    this.el = h("div", { class: "pbx-banner", role: "alert", "data-test": "pbx-banner", hidden: true });
  }

  render() {
    const lost = this.store.lostPbxs();
    const key = JSON.stringify(lost) + (manyPbxs() ? "+" : "");
    if (key === this.shown) return;
    this.shown = key;
    this.el.replaceChildren(...lost.map((l) => h("div", { class: "pbx-lost", "data-test": "pbx-lost", "data-pbx": l.pbx },
      lostText(l.pbx, l.since))));
    this.el.hidden = lost.length === 0;
  }
}

/** Mark ``el`` (a board's row, a pop) uncertain or not, with its visible mark ``mark`` (from uncertainMark()). */
export function markUncertain(el, mark, uncertain) {
  el.classList.toggle("uncertain", uncertain);
  el.dataset.uncertain = String(uncertain);
  mark.hidden = !uncertain;
}

/** The visible mark of a call whose PBX is lost (hidden until markUncertain shows it). */
export function uncertainMark(test = "uncertain") {
  return h("span", { class: "uncertain-mark", "data-test": test, hidden: true,
    title: T("Нет связи с АТС: этот звонок мог уже закончиться или измениться") }, `⚠ ${T("неточно")}`);
}
