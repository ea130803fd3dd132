"""The panel speaks Russian and English, and keeps so: its files are read the way a translator would check them.

Every module writes its Russian text through its translator (``const T = translations({...})``, i18n.js) with the
English entry beside it. Read from ``ui_bridge/static``'s own files, this holds that:

* every text a module passes to ``T(...)`` / ``T.plural(...)`` has its English entry (no Russian left in the
  English panel), and the entry keeps the text's ``{placeholders}`` and, for a count, its forms;
* no Russian string is written anywhere else (a toast, a label, a template literal gluing words to data): what is
  not a translated text must say so by a ``// i18n: data`` comment on its line (a regex, a keyboard layout);
* no catalogue entry is stale (used by no ``T`` call of its module, nor by its page's ``data-i18n`` texts);
* the HTML pages' Russian texts carry ``data-i18n`` (or ``data-i18n-title`` …), each with its entry in the
  catalogue of the module the page loads.

The scanner is a small JavaScript tokenizer (strings, template literals and their ``${}``, comments, regex
literals); the last tests feed it bad code to show it finds what it must.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "ui_bridge" / "static"
CYRILLIC = re.compile(r"[А-Яа-яЁё]")
PLACEHOLDER = re.compile(r"\{(\w+)\}")
DATA_MARKER = "i18n: data"
#: After these a ``/`` starts a regex literal, not a division.
REGEX_AFTER = set("(,=:[!&|?{};+-*%<>~^") | {"return", "typeof", "case", "do", "else", "in", "of", "new", "delete",
                                              "void", "throw", "yield", "await", ""}


@dataclass
class Token:
    kind: str  # "str" (a quoted string or a template literal's text), "id", "punct", "regex"
    value: str
    line: int
    #: A template literal's piece of text (may sit between ``${}``s): never a T key.
    template: bool = False


@dataclass
class Module:
    name: str
    tokens: list[Token]
    #: line number -> the comments on it
    comments: dict[int, str]

    def marked(self, line: int) -> bool:
        return DATA_MARKER in self.comments.get(line, "")


def tokenize(name: str, source: str) -> Module:
    """JavaScript cut into the tokens the checks need (not a parser: enough for the panel's own plain modules)."""
    tokens: list[Token] = []
    comments: dict[int, str] = {}
    i, line, n = 0, 1, len(source)
    braces: list[str] = []  # "{" for code blocks, "${" for a template literal's expression

    def last() -> str:
        for tok in reversed(tokens):
            return tok.value if tok.kind in ("punct", "id") else "<value>"
        return ""

    def template_from(start: int, first_line: int) -> int:
        """Read template text from ``start`` (after ` or the } closing a ${}) up to its end or the next ${."""
        nonlocal line
        j, text = start, []
        while j < n:
            c = source[j]
            if c == "\\":
                text.append(source[j:j + 2])
                j += 2
                continue
            if c == "`":
                tokens.append(Token("str", "".join(text), first_line, template=True))
                return j + 1
            if c == "$" and source[j + 1:j + 2] == "{":
                tokens.append(Token("str", "".join(text), first_line, template=True))
                braces.append("${")
                return j + 2
            if c == "\n":
                line += 1
            text.append(c)
            j += 1
        raise AssertionError(f"{name}:{first_line}: unterminated template literal")

    while i < n:
        c = source[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif source.startswith("//", i):
            end = source.find("\n", i)
            end = n if end < 0 else end
            comments[line] = comments.get(line, "") + source[i:end]
            i = end
        elif source.startswith("/*", i):
            end = source.index("*/", i) + 2
            comments[line] = comments.get(line, "") + source[i:end]
            line += source.count("\n", i, end)
            i = end
        elif c in "\"'":
            j, text = i + 1, []
            while source[j] != c:
                if source[j] == "\n":
                    raise AssertionError(f"{name}:{line}: unterminated string")
                if source[j] == "\\":
                    text.append(source[j + 1])
                    j += 2
                else:
                    text.append(source[j])
                    j += 1
            tokens.append(Token("str", "".join(text), line))
            i = j + 1
        elif c == "`":
            i = template_from(i + 1, line)
        elif c == "/" and last() in REGEX_AFTER:
            j, in_class = i + 1, False
            while True:
                d = source[j]
                if d == "\\":
                    j += 2
                    continue
                if d == "[":
                    in_class = True
                elif d == "]":
                    in_class = False
                elif d == "/" and not in_class:
                    break
                elif d == "\n":
                    raise AssertionError(f"{name}:{line}: unterminated regex")
                j += 1
            j += 1
            while j < n and source[j].isalpha():
                j += 1
            tokens.append(Token("regex", source[i:j], line))
            i = j
        elif c.isalnum() or c in "_$":
            j = i
            while j < n and (source[j].isalnum() or source[j] in "_$"):
                j += 1
            tokens.append(Token("id", source[i:j], line))
            i = j
        elif c == "{":
            braces.append("{")
            tokens.append(Token("punct", c, line))
            i += 1
        elif c == "}":
            opened = braces.pop() if braces else "{"
            if opened == "${":
                i = template_from(i + 1, line)
            else:
                tokens.append(Token("punct", c, line))
                i += 1
        else:
            tokens.append(Token("punct", c, line))
            i += 1
    return Module(name, tokens, comments)


@dataclass
class Findings:
    """What one module's texts look like to a translator."""

    catalogue: dict[str, str] = field(default_factory=dict)
    catalogue_lines: dict[str, int] = field(default_factory=dict)
    #: (key, line, plural?) of each T call with a literal text
    used: list[tuple[str, int, bool]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def translators(module: Module) -> set[str]:
    """The names bound to ``translations({...})`` in the module (``const T = translations(...)``)."""
    names = set()
    toks = module.tokens
    for k in range(len(toks) - 3):
        if (toks[k].kind == "id" and toks[k + 1].value == "=" and toks[k + 2].value == "translations"
                and toks[k + 3].value == "("):
            names.add(toks[k].value)
    return names


def examine(module: Module) -> Findings:
    found = Findings()
    toks = module.tokens
    names = translators(module)
    allowed: set[int] = set()  # indexes of string tokens that are a T call's text or a catalogue key/value
    k = 0
    while k < len(toks):
        tok = toks[k]
        # A catalogue: translations({ "key": "value", ... })
        if tok.value == "translations" and k + 2 < len(toks) and toks[k + 1].value == "(" and toks[k + 2].value == "{":
            depth, j = 1, k + 3
            while depth:
                t = toks[j]
                if t.value == "{":
                    depth += 1
                elif t.value == "}":
                    depth -= 1
                elif t.kind == "str" and toks[j + 1].value == ":" and toks[j + 2].kind == "str":
                    value = toks[j + 2]
                    if t.template or value.template:
                        found.problems.append(f"{module.name}:{t.line}: a catalogue entry is a plain string")
                    if t.value in found.catalogue:
                        found.problems.append(f"{module.name}:{t.line}: {t.value!r} is in the catalogue twice")
                    found.catalogue[t.value] = value.value
                    found.catalogue_lines[t.value] = t.line
                    allowed.update((j, j + 2))
                    j += 2
                j += 1
            k = j
            continue
        # A translated text: T("…") or T.plural("…", n)
        if tok.kind == "id" and tok.value in names and (k == 0 or toks[k - 1].value != "."):
            plural = k + 2 < len(toks) and toks[k + 1].value == "." and toks[k + 2].value == "plural"
            at = k + 3 if plural else k + 1
            if at < len(toks) and toks[at].value == "(":
                arg = toks[at + 1]
                closes = toks[at + 2].value in (",", ")")
                if arg.kind == "str" and not arg.template and closes:
                    found.used.append((arg.value, arg.line, plural))
                    allowed.add(at + 1)
                else:
                    found.problems.append(f"{module.name}:{tok.line}: {tok.value}(...) takes a text written out "
                                          "(a string literal), so that its entry can be checked")
        k += 1
    for index, t in enumerate(toks):
        if t.kind in ("str", "regex") and CYRILLIC.search(t.value) and index not in allowed \
                and not module.marked(t.line):
            found.problems.append(f"{module.name}:{t.line}: Russian text outside T(...): {t.value.strip()[:60]!r}")
    return found


def modules() -> dict[str, Module]:
    return {p.name: tokenize(p.name, p.read_text(encoding="utf-8")) for p in sorted(STATIC.glob("*.js"))}


class Page(HTMLParser):
    """An HTML page's texts: which are marked for translation, which Russian ones are not, which module it loads."""

    ATTRS = ("title", "placeholder", "aria-label")

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict[str, str | None]]] = []
        self.keys: list[str] = []
        self.unmarked: list[str] = []
        self.script: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.script = str(a["src"]).rsplit("/", 1)[-1]
        for name in self.ATTRS:
            value = a.get(name)
            if value and CYRILLIC.search(value):
                (self.keys if f"data-i18n-{name}" in a else self.unmarked).append(value)
        if tag not in ("meta", "link", "input", "br", "img"):
            self.stack.append((tag, a))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        text = data.strip()
        if not text or not CYRILLIC.search(text):
            return
        if any(tag == "noscript" for tag, _ in self.stack):
            # Shown only without JavaScript, so nothing can translate it: both languages, each marked with its lang.
            if not any(a.get("lang") == "ru" for _, a in self.stack):
                self.unmarked.append(text)
            return
        if self.stack and "data-i18n" in self.stack[-1][1]:
            self.keys.append(text)
        else:
            self.unmarked.append(text)


def pages() -> dict[str, Page]:
    out = {}
    for path in sorted(STATIC.glob("*.html")):
        page = Page()
        page.feed(path.read_text(encoding="utf-8"))
        out[path.name] = page
    return out


# -- the panel's files -----------------------------------------------------------------------------------------

def test_every_text_given_to_a_translator_has_its_english_entry() -> None:
    missing = []
    for name, module in modules().items():
        found = examine(module)
        missing += [f"{name}:{line}: no English entry for {key!r}" for key, line, _ in found.used
                    if key not in found.catalogue]
    assert not missing, "\n".join(missing)


def test_no_russian_text_escapes_the_translators() -> None:
    problems = []
    for module in modules().values():
        problems += examine(module).problems
    for name, page in pages().items():
        problems += [f"{name}: Russian text without data-i18n: {text!r}" for text in page.unmarked]
    assert not problems, "\n".join(problems)


def test_every_catalogue_entry_is_used() -> None:
    page_keys: dict[str, set[str]] = {}
    for page in pages().values():
        if page.script:
            page_keys.setdefault(page.script, set()).update(page.keys)
    stale = []
    for name, module in modules().items():
        found = examine(module)
        used = {key for key, _, _ in found.used} | page_keys.get(name, set())
        stale += [f"{name}:{found.catalogue_lines[key]}: {key!r} is used nowhere" for key in found.catalogue
                  if key not in used]
    assert not stale, "\n".join(stale)


def test_english_entries_are_english_and_keep_the_placeholders_and_forms() -> None:
    wrong = []
    for name, module in modules().items():
        found = examine(module)
        plural_keys = {key for key, _, plural in found.used if plural}
        for key, english in found.catalogue.items():
            line = found.catalogue_lines[key]
            if CYRILLIC.search(english):
                wrong.append(f"{name}:{line}: the English of {key!r} has Russian letters: {english!r}")
            if not english.strip():
                wrong.append(f"{name}:{line}: the English of {key!r} is blank")
            if set(PLACEHOLDER.findall(key)) != set(PLACEHOLDER.findall(english)):
                wrong.append(f"{name}:{line}: {key!r} and {english!r} differ in their {{placeholders}}")
            if key in plural_keys and (key.count("|") != 2 or english.count("|") != 1):
                wrong.append(f"{name}:{line}: a count's text has 3 Russian forms and 2 English ones: {key!r}")
            if key not in plural_keys and "|" in key:
                wrong.append(f"{name}:{line}: {key!r} has forms but is not used through T.plural")
    assert not wrong, "\n".join(wrong)


def test_every_html_text_has_its_entry_in_the_page_module() -> None:
    mods = modules()
    missing = []
    for name, page in pages().items():
        assert page.script in mods, f"{name} loads no module of the panel"
        catalogue = examine(mods[page.script]).catalogue
        missing += [f"{name}: no English entry in {page.script} for {key!r}" for key in page.keys
                    if key not in catalogue]
    assert not missing, "\n".join(missing)


# -- the scanner finds what it must ----------------------------------------------------------------------------

BAD = """
import { translations } from "./i18n.js";
const T = translations({
  "Пауза": "Pause",
  "Ждут {n}": "Waiting",
  "Никому не нужно": "Unused",
  "{n} звонок|{n} звонка|{n} звонков": "{n} call|{n} calls",
});
toast(`Сервер: ${msg.message}`);
const word = "Ошибка";
T(word);
T("Пауза");
T("Нет в каталоге");
T.plural("{n} звонок|{n} звонка|{n} звонков", 3);
const layout = "йцукен"; // i18n: data (the keyboard layout)
const re = /[а-я]+/i;
const ok = `${T("Пауза")} · ${count}`;
"""


def test_the_scanner_finds_russian_outside_t_missing_and_stale_entries() -> None:
    found = examine(tokenize("bad.js", BAD))
    problems = "\n".join(found.problems)
    assert "bad.js:9: Russian text outside T(...): 'Сервер:'" in problems  # glued into a template literal
    assert "bad.js:10: Russian text outside T(...): 'Ошибка'" in problems
    assert "bad.js:11: T(...) takes a text written out" in problems
    assert "bad.js:16: Russian text outside T(...): '/[а-я]+/i'" in problems
    assert "йцукен" not in problems  # marked as data
    assert len(found.problems) == 4, problems
    used = {key for key, _, _ in found.used}
    assert used == {"Пауза", "Нет в каталоге", "{n} звонок|{n} звонка|{n} звонков"}
    assert set(found.catalogue) - used == {"Ждут {n}", "Никому не нужно"}  # stale
    assert {key for key in used if key not in found.catalogue} == {"Нет в каталоге"}


def test_the_scanner_reads_html_pages_marks() -> None:
    page = Page()
    page.feed('<html><head><title data-i18n>Вход</title><script type="module" src="/static/login.js"></script>'
              '</head><body><p>Загрузка…</p><input placeholder="Имя" data-i18n-placeholder>'
              '<label><span data-i18n>Пароль</span><input title="Пароль ещё раз"></label>'
              '<noscript><p lang="ru">Нужен JavaScript.</p><p lang="en">JavaScript is needed.</p></noscript>'
              '</body></html>')
    assert page.script == "login.js"
    assert page.keys == ["Вход", "Имя", "Пароль"]
    assert page.unmarked == ["Загрузка…", "Пароль ещё раз"]


@pytest.mark.parametrize("name", ["i18n.js", "util.js", "net.js"])
def test_the_shared_modules_are_scanned(name: str) -> None:
    """The files the checks above read are the panel's own (a renamed folder would make them pass on nothing)."""
    assert name in modules()
