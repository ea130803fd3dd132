// The panel's languages: Russian (the source text) and English.
//
// gettext-style: the code writes the Russian text and each module keeps its own English catalogue beside it,
// so modules never contend for one shared table and a missing translation falls back to the Russian (never to
// a key or a blank):
//
//   const T = translations({ "Пауза": "Pause", "Ждут {n}": "{n} waiting" });
//   T("Пауза"); T("Ждут {n}", { n: 3 });
//
// The language is the user's choice kept in the browser (localStorage "cti.lang"), else ?lang=, else the
// browser's preferred language when it is English, else Russian. tests/ui_bridge/test_panel_locale.py checks
// that every text a module passes to T has its English entry.

const STORAGE_KEY = "cti.lang";
export const LANGUAGES = ["ru", "en"];

function chosen() {
  try {
    const asked = new URLSearchParams(location.search).get("lang");
    if (LANGUAGES.includes(asked)) return asked;
    const kept = localStorage.getItem(STORAGE_KEY);
    if (LANGUAGES.includes(kept)) return kept;
  } catch {
    /* no storage (private mode): fall through */
  }
  const browser = (navigator.language || "ru").slice(0, 2).toLowerCase();
  return browser === "en" ? "en" : "ru";
}

export const lang = chosen();
document.documentElement.lang = lang;

/** Keep the user's language for the next visits and reload the panel in it. */
export function setLang(value) {
  if (!LANGUAGES.includes(value)) return;
  try {
    localStorage.setItem(STORAGE_KEY, value);
  } catch {
    /* the choice lasts this page only */
  }
  const url = new URL(location.href);
  url.searchParams.delete("lang");
  location.replace(url.toString());
}

function fill(text, vars) {
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

/** A module's translator: ``T(russian, vars)`` in the panel's language. */
export function translations(english) {
  return (russian, vars) => fill(lang === "en" && english[russian] !== undefined ? english[russian] : russian, vars);
}

/** Number and date formats of the panel's language. */
export const LOCALE = lang === "en" ? "en-GB" : "ru-RU";
