"""The dashboard's modules keep one place for each thing (read from the files, no browser).

- No page carries its own copy of the center's vocabulary (event names, state lists, rule
  classes): those come from GET /api/v1/vocabulary (dashboard/static/vocabulary.js).
- One translation lookup: only i18n.js looks words up by language; every literal key a page
  asks for has words in zh and en, and no key is in two word tables.
- The phone's service worker caches every module the phone page imports.
- Every stylesheet a page links exists, and per-page styles stay out of the shared style.css.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from center.domain.event_types import load_event_types
from center.domain.ticket_states import STATES
from center.services.verdicts import REASONS
from wire.paths import DEFAULTS_DIR
from wire.vocabulary import OUR_CLASSES

DASHBOARD = Path(__file__).resolve().parents[1] / "dashboard"
STATIC = DASHBOARD / "static"
SCRIPTS = sorted(STATIC.glob("*.js"))
PAGES = sorted(DASHBOARD.glob("*.html"))
IMPORT = re.compile(r'(?:import|from)\s+"\./([\w-]+\.js)"')


def copies_of_the_vocabulary(text: str) -> list[str]:
    """What in a page's script repeats the center's vocabulary: a table naming event codes,
    states, detector classes or verdict reasons (``"0501": "无照游商"``, ``registered: "已登记"``),
    any event name of the center's table, or a list literal of two or more event codes, states,
    classes or verdict reasons (``new Set(["verified", "evaluated", ...])``). Codes keyed to
    colours (the chart's fixed colours) are presentation, not vocabulary."""
    events = load_event_types(DEFAULTS_DIR / "event_types.yaml")
    classes = set(OUR_CLASSES)
    found = [f"event name {e.zh!r}" for e in events.values() if e.zh in text]
    for key, value in re.findall(r'(?<![\w.])["\']?(\w+)["\']?\s*:\s*["\'`]([^"\'`\n]*)', text):
        if not value.startswith("#") and key in {*events, *STATES, *classes, *REASONS}:
            found.append(f"a name for {key}: {value!r}")
    for items in re.findall(r"\[([^\[\]]*)\]", text):
        quoted = set(re.findall(r'["\']([\w]+)["\']', items))
        for kind, ids in (("event codes", set(events)), ("states", set(STATES)),
                          ("classes", classes), ("verdict reasons", set(REASONS))):
            if len(quoted & ids) >= 2:
                found.append(f"a list of {kind} {sorted(quoted & ids)}")
    return found


def test_copies_of_the_vocabulary_are_found() -> None:
    """The check itself finds what common.js and engineer.js held before the vocabulary route."""
    before = ('const EVENT_NAMES = { zh: { "0501": "无照游商", "0507": "道路遗撒/堆物" } };\n'
              'export const CLOSED_STATES = new Set(["verified", "evaluated", "closed", "void"]);\n'
              'const RULE_CLASSES = { illegal_parking: ["two_wheeler", "car", "scooter"] };\n'
              'const STATE_NAMES = { zh: { registered: "已登记" } };')
    found = copies_of_the_vocabulary(before)
    assert "event name '无照游商'" in found and "a name for 0507: '道路遗撒/堆物'" in found
    assert "a list of states ['closed', 'evaluated', 'verified', 'void']" in found
    assert "a list of classes ['car', 'scooter', 'two_wheeler']" in found
    assert "a name for registered: '已登记'" in found
    assert copies_of_the_vocabulary('const CODES = ["0506", "0504", "0501"];') == [
        "a list of event codes ['0501', '0504', '0506']"]
    assert copies_of_the_vocabulary('const TYPE_COLORS = { "0506": "#22d3ee" };') == []


@pytest.mark.parametrize("path", [*SCRIPTS, *PAGES], ids=lambda p: p.name)
def test_no_page_keeps_a_copy_of_the_vocabulary(path: Path) -> None:
    assert copies_of_the_vocabulary(path.read_text(encoding="utf-8")) == []


def test_only_i18n_looks_words_up_by_language() -> None:
    lookups = {p.name: re.findall(r"\w+\[LANG\]", p.read_text(encoding="utf-8"))
               for p in SCRIPTS if p.name != "i18n.js"}
    assert {name: found for name, found in lookups.items() if found} == {}


def _word_tables() -> dict[str, dict[str, dict[str, str]]]:
    """Every *-words.js table, evaluated by node (they are data: one addWords call each)."""
    script = ("const tables = {}; globalThis.location = {search: ''};"
              "const load = async (f) => { const src = require('fs').readFileSync(f, 'utf8')"
              ".replace(/^import .*$/m, '').replace('addWords(', 'tables[f] = (');"
              "eval(src); };"
              f"Promise.all({json.dumps([str(p) for p in STATIC.glob('*-words.js')])}.map(load))"
              ".then(() => console.log(JSON.stringify(tables)));")
    out = subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True)
    return {Path(k).name: v for k, v in json.loads(out.stdout).items()}


def test_every_word_is_in_one_table_in_both_languages() -> None:
    tables = _word_tables()
    assert {"staff-words.js", "phone-words.js", "resident-words.js"} <= set(tables)
    owner: dict[str, str] = {}
    for name, table in tables.items():
        assert set(table["zh"]) == set(table["en"]), name
        for key in table["zh"]:
            assert key not in owner, f"{key} in {owner.get(key)} and {name}"
            owner[key] = name


def test_every_literal_key_a_page_asks_for_has_words() -> None:
    known = {k for table in _word_tables().values() for k in table["zh"]}
    asked: set[str] = set()
    for path in SCRIPTS:
        asked |= set(re.findall(r'\bt\("([\w.]+)"', path.read_text(encoding="utf-8")))
    for path in PAGES:
        asked |= set(re.findall(r'data-i18n(?:-placeholder)?="([\w.]+)"',
                                path.read_text(encoding="utf-8")))
    assert sorted(asked - known) == []


def _imports(module: str, seen: set[str] | None = None) -> set[str]:
    seen = set() if seen is None else seen
    if module not in seen:
        seen.add(module)
        for name in IMPORT.findall((STATIC / module).read_text(encoding="utf-8")):
            _imports(name, seen)
    return seen


def test_the_service_worker_caches_every_module_of_the_phone() -> None:
    sw = (DASHBOARD / "sw.js").read_text(encoding="utf-8")
    shell = set(re.findall(r'"/static/([\w./-]+)"', sw.split("const OPTIONAL")[0]))
    assert _imports("phone.js") <= shell
    assert all((STATIC / name).exists() for name in shell), shell


def test_pages_link_existing_stylesheets_and_modules() -> None:
    for page in PAGES:
        html = page.read_text(encoding="utf-8")
        for name in re.findall(r'(?:href|src)="/static/([\w.-]+)"', html):
            assert (STATIC / name).exists(), (page.name, name)
    for script in SCRIPTS:
        for name in IMPORT.findall(script.read_text(encoding="utf-8")):
            assert (STATIC / name).exists(), (script.name, name)


def test_shared_style_holds_no_page_rules() -> None:
    """style.css is what the wall, leader and phone share; a page's own rules (scoped to its
    body class) are in its own file, linked after style.css."""
    shared = (STATIC / "style.css").read_text(encoding="utf-8")
    page_scope = r"(?:^|[\s,>])(?:body|html)?\.(wall|leader|phone|engineer)(?:-root)?\b(?!-)"
    scoped = re.findall(page_scope, shared, re.M)
    assert scoped == []
    for page in ("wall", "leader", "phone"):
        html = (DASHBOARD / f"{page}.html").read_text(encoding="utf-8")
        sheets = re.findall(r'<link rel="stylesheet" href="/static/([\w.-]+)">', html)
        assert sheets == ["style.css", f"{page}.css"], (page, sheets)
        own = (STATIC / f"{page}.css").read_text(encoding="utf-8")
        assert re.search(rf"\.{page}\b", own), f"{page}.css holds none of {page}'s rules"
