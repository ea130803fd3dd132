// The panel's languages: Russian (the source text) and English.
//
// gettext-style: the code writes the Russian text and each module keeps its own English catalogue beside it,
// so modules never contend for one shared table and a missing translation falls back to the Russian (never to
// a key or a blank):
//
//   const T = translations({ "Пауза": "Pause", "Ждут {n}": "{n} waiting", "{n} звонок|{n} звонка|{n} звонков": "{n} call|{n} calls" });
//   T("Пауза"); T("Ждут {n}", { n: 3 }); T.plural("{n} звонок|{n} звонка|{n} звонков", 5);
//
// A count is shown through T.plural: the Russian key has the three forms (one, few, many: 1 звонок, 2 звонка,
// 5 звонков), the English entry two (one, other); the form is chosen by the language's own plural rules.
//
// The language: ?lang= (a link or a test), else the user's choice kept in this browser (localStorage "cti.lang",
// the RU / EN switch), else the centre's default ([http] language, on the page's <html data-lang-default>), else
// the browser's preferred language when it is English, else Russian. HTML pages mark their static texts with
// data-i18n (and data-i18n-title, -placeholder, -aria-label for attributes); translatePage() puts them in the
// panel's language. tests/ui_bridge/test_panel_locale.py checks that every text a module passes to T has its
// English entry, that no Russian text escapes T, and that no entry is stale. docs/panel.md#languages.

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
  const centre = document.documentElement.dataset.langDefault;
  if (LANGUAGES.includes(centre)) return centre;
  const browser = (navigator.language || "ru").slice(0, 2).toLowerCase();
  return browser === "en" ? "en" : "ru";
}

export const lang = chosen();
document.documentElement.lang = lang;

/** Number and date formats of the panel's language. */
export const LOCALE = lang === "en" ? "en-GB" : "ru-RU";

/** Keep the user's language for the next visits and reload the page in it. */
export function setLang(value) {
  if (!LANGUAGES.includes(value)) return;
  try {
    localStorage.setItem(STORAGE_KEY, value);
  } catch {
    /* no storage: the choice lasts through ?lang= below */
  }
  const url = new URL(location.href);
  url.searchParams.delete("lang");
  try {
    if (localStorage.getItem(STORAGE_KEY) !== value) url.searchParams.set("lang", value);
  } catch {
    url.searchParams.set("lang", value);
  }
  location.replace(url.toString());
}

/** A number as the language writes it (1 000 / 1,000). */
export function fmtNumber(value) {
  return typeof value === "number" && Number.isFinite(value) ? value.toLocaleString(LOCALE) : String(value);
}

function fill(text, vars) {
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

const RULES = new Intl.PluralRules(LOCALE);
// Which of a key's forms each plural category takes: Russian "one|few|many" ("other": fractions, as "few"),
// English "one|other".
const FORM = lang === "en" ? { one: 0, other: 1 } : { one: 0, few: 1, many: 2, other: 1 };

/** The form of ``forms`` ("a|b|c") for ``n`` in the panel's language. */
function pick(forms, n) {
  const list = forms.split("|");
  const index = FORM[RULES.select(n)] ?? list.length - 1;
  return list[Math.min(index, list.length - 1)];
}

/**
 * A module's translator: ``T(russian, vars)`` in the panel's language, and ``T.plural(forms, n, vars)`` for a
 * count (``{n}`` in the forms is the count, written the language's way).
 */
export function translations(english) {
  const text = (russian) => (lang === "en" && english[russian] !== undefined ? english[russian] : russian);
  const T = (russian, vars) => fill(text(russian), vars);
  T.plural = (forms, n, vars = {}) => fill(pick(text(forms), n), { n: fmtNumber(n), ...vars });
  return T;
}

/**
 * The static texts of an HTML page in the panel's language: each element with data-i18n (its text) or
 * data-i18n-title / -placeholder / -aria-label (that attribute), through the page's module's ``T``.
 */
export function translatePage(T, root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = T(el.textContent.trim());
  for (const attr of ["title", "placeholder", "aria-label"]) {
    for (const el of root.querySelectorAll(`[data-i18n-${attr}]`)) el.setAttribute(attr, T(el.getAttribute(attr)));
  }
}

/** The RU / EN switch (the top bar, the login page): two buttons, the current language's pressed. */
export function langSwitch() {
  const box = document.createElement("span");
  box.className = "lang-switch";
  box.dataset.test = "lang-switch";
  box.setAttribute("role", "group");
  for (const code of LANGUAGES) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = `btn btn-ghost btn-small lang${code === lang ? " lang-current" : ""}`;
    button.dataset.test = `lang-${code}`;
    button.lang = code;
    button.setAttribute("aria-pressed", String(code === lang));
    button.textContent = code.toUpperCase();
    button.addEventListener("click", () => { if (code !== lang) setLang(code); });
    box.append(button);
  }
  return box;
}
