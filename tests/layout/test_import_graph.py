"""The package graph is the one docs/architecture.md draws, and it has no cycle.

root (``companion``) → ``ui_bridge`` → ``store`` → ``cti``, with ``asterisk`` beneath them all. The pure core
(``cti``) reads AMI message types and nothing else of the project, so it can be tested with pasted frames and
reused by any edge. The replay PBX (``asterisk.replay``) is a test and demo tool: the production AMI client never
imports it. Every ``import`` counts, including those only for type checking: a cycle of types is a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: A node of the graph: a top-level package, except the replay PBX, which is its own node.
NODES = ("companion", "ui_bridge", "store", "cti", "recognizer", "asterisk", "asterisk.replay")

#: What each node may import from the project. Anything else (stdlib, third-party) is free.
ALLOWED: dict[str, set[str]] = {
    "companion": {"ui_bridge", "store", "cti", "recognizer", "asterisk", "asterisk.replay"},
    "ui_bridge": {"store", "cti", "asterisk"},
    "store": {"cti", "asterisk"},
    "recognizer": {"cti", "asterisk"},
    "cti": {"asterisk.messages"},
    "asterisk": set(),
    "asterisk.replay": {"asterisk"},
}


def _node_of_module(module: str) -> str | None:
    top = module.split(".")[0]
    if top == "asterisk" and (module == "asterisk.replay" or module.startswith("asterisk.replay.")):
        return "asterisk.replay"
    return top if top in {n.split(".")[0] for n in NODES} else None


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str | None = None) -> Iterator[tuple[int, str]]:
    """Every module ``path`` (the module ``module``) imports, made absolute, with its line."""
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:  # ``from asterisk import replay`` imports the module asterisk.replay
                submodule = f"{target}.{alias.name}"
                yield node.lineno, submodule if _is_module(submodule) else target


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _sources() -> list[Path]:
    tops = sorted({n.split(".")[0] for n in NODES})
    return [p for top in tops for p in sorted((ROOT / top).rglob("*.py"))]


def _edges() -> dict[tuple[str, str], list[str]]:
    """(from node, imported module) → where, for every import of a project module."""
    found: dict[tuple[str, str], list[str]] = {}
    for path in _sources():
        here = _node_of_module(_module_name(path))
        assert here is not None
        for line, target in _imports(path):
            there = _node_of_module(target)
            if there is None or there == here:
                continue
            found.setdefault((here, target), []).append(f"{path.relative_to(ROOT)}:{line}")
    return found


def _allowed(here: str, target: str) -> bool:
    for allowed in ALLOWED[here]:
        if target == allowed or target.startswith(allowed + "."):
            # ``asterisk`` allowed does not open ``asterisk.replay``: that node is listed on its own.
            if allowed == "asterisk" and _node_of_module(target) == "asterisk.replay":
                continue
            return True
    return False


def test_sources_are_found() -> None:
    names = {_module_name(p) for p in _sources()}
    assert {"cti.model", "companion.daemon", "store.repository", "ui_bridge.hub", "asterisk.connection"} <= names


@pytest.mark.parametrize("node", NODES)
def test_each_package_imports_only_what_the_architecture_allows(node: str) -> None:
    wrong = {f"{target} ({', '.join(where)})" for (here, target), where in _edges().items()
             if here == node and not _allowed(here, target)}
    assert not wrong, f"{node} may import only {sorted(ALLOWED[node])}; it imports: {sorted(wrong)}"


def test_the_package_graph_has_no_cycle() -> None:
    graph: dict[str, set[str]] = {n: set() for n in NODES}
    for (here, target) in _edges():
        there = _node_of_module(target)
        assert there is not None
        graph[here].add(there)
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = [*path[path.index(nxt):], nxt]
                pytest.fail("package cycle: " + " → ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = "done"

    for node in NODES:
        if node not in state:
            visit(node)


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The rule is not vacuous: a core module importing the store, relatively or not, would be reported."""
    source = tmp_path / "probe.py"
    source.write_text("from store.repository import CallStore\nfrom ..ui_bridge import hub\n"
                      "from .records import CallRecord\nfrom asterisk import replay\n")
    targets = [target for _, target in _imports(source, "cti.probe")]
    wrong = sorted({t for t in targets if _node_of_module(t) not in (None, "cti") and not _allowed("cti", t)})
    assert wrong == ["asterisk.replay", "store.repository", "ui_bridge.hub"]
    assert _allowed("cti", "asterisk.messages")
    assert not _allowed("asterisk", "asterisk.replay.pbx")
