"""The module rules of docs/ARCHITECTURE.md, checked on the source: what each package may import,
one writer of the chats table, and chat modes spelled only by their enum."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from coexist.domain.chat import ChatMode

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "layers" / "coexist"

# Package (or top-level module) of the layer -> what it may import from the layer.
MAY_IMPORT = {
    "meta": set(),
    "domain": {"domain", "meta"},
    "bots": {"bots", "aws"},
    "store": {"domain", "store", "resources", "outbound.requests"},
    "outbound": {"domain", "store", "outbound", "inbox", "number_config", "resources", "events"},
    "conversation": {"conversation", "domain", "store", "outbound", "bots", "number_config", "resources", "events"},
    "intake": {"meta", "store"},
    "ingest": {"domain", "meta", "store", "inbox", "intake", "customers", "events"},
    "events": {"events", "domain", "store", "resources"},
    "reminders": {"reminders", "domain", "store", "outbound", "events", "resources"},
    "customers": {"domain", "store", "inbox"},
    "consent_import": {"domain", "store", "inbox", "customers"},
    "reads": {"domain", "store", "inbox"},
    "watchdog": {"domain", "store"},
    "authorization": {"domain", "reads"},
    "privacy": {"domain", "store", "inbox", "reads"},
    "inbox_filters": {"domain", "reads"},
    "supervisor": {"domain", "reads", "store"},
    "inbox": {"store"},
    "number_config": {"bots"},
    "resources": {"outbound.deadlines"},  # the sender timeout derived from one send's worst case
    "settings": {"resources"},
    "costs": {"domain", "store", "resources"},
    "pricing": set(),  # data: the rate cards
    "live": {"live"},
    "campaigns": {"domain", "store", "outbound", "inbox", "customers"},
    "retention": {"domain", "store", "resources"},
    "observability": {"resources"},
    "legacy_chats": {"domain", "store", "aws", "wiring"},  # an operator's command: its own entry point
}
MAY_IMPORT["ingest"] = MAY_IMPORT["ingest"] | {"costs"}


def _layer_imports(path: Path) -> set[str]:
    """Every `coexist.<x>` this file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("coexist"):
            names = [node.module] if node.module != "coexist" else [f"coexist.{a.name}" for a in node.names]
            found.update(names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("coexist."))
    return found


def _owner(path: Path) -> str:
    relative = path.relative_to(LIBRARY)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _allowed(imported: str, rules: set[str]) -> bool:
    target = imported.removeprefix("coexist.")
    return any(target == rule or target.startswith(rule + ".") for rule in rules)


def _library_files():
    return sorted(p for p in LIBRARY.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", _library_files(), ids=lambda p: str(p.relative_to(LIBRARY)))
def test_each_module_imports_only_what_its_package_may(path):
    owner = _owner(path)
    if owner not in MAY_IMPORT:
        assert owner in {"__init__", "aws", "wiring"}, f"{owner}: add it to MAY_IMPORT and docs/ARCHITECTURE.md"
        return
    wrong = sorted(i for i in _layer_imports(path) if not _allowed(i, MAY_IMPORT[owner]))
    assert not wrong, f"{path.relative_to(ROOT)} may not import {wrong} (docs/ARCHITECTURE.md, The modules)"


def test_the_library_never_imports_functions_stacks_or_local():
    for path in _library_files():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            assert not any(m.split(".")[0] in {"functions", "stacks", "local"} for m in modules), path


def test_only_the_chat_repository_writes_the_chats_table():
    """The chats table is reached through `ChatRepository` alone: nobody else holds it or its name."""
    holders = []
    for path in _library_files() + sorted((ROOT / "functions").rglob("*.py")):
        text = path.read_text()
        if "chats_table" in text or "CHATS_TABLE" in text or "ChatRepository(" in text:
            holders.append(str(path.relative_to(ROOT)))
    # resources.py defines the table once (for CDK and local mode too); settings reads its name.
    assert set(holders) <= {"layers/coexist/resources.py", "layers/coexist/settings.py", "layers/coexist/wiring.py"}, holders
    wiring = (LIBRARY / "wiring.py").read_text()
    assert wiring.count("aws.table(config.chats_table)") + wiring.count("aws.table(settings().chats_table)") == 1


def _string_constants(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node


def test_chat_modes_are_spelled_only_by_their_enum():
    """Where code compares or writes a chat's mode, it names `ChatMode`; the words themselves appear
    only in domain/chat.py (other meanings of "queued" or "agent" are other enums or statuses)."""
    modes = {m.value for m in ChatMode}
    offenders = []
    for path in _library_files() + sorted((ROOT / "functions").rglob("*.py")):
        if path == LIBRARY / "domain" / "chat.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            # mode == "bot", mode in ("agent", "app"), {"mode": "closed"}, mode="queued"
            if isinstance(node, ast.Compare) and _mentions_mode(node.left):
                offenders += [_where(path, c) for c in _constants_in(node.comparators) if c.value in modes]
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values):
                    if isinstance(key, ast.Constant) and key.value == "mode" and isinstance(value, ast.Constant) and value.value in modes:
                        offenders.append(_where(path, value))
            elif isinstance(node, ast.keyword) and node.arg == "mode" and isinstance(node.value, ast.Constant) and node.value.value in modes:
                offenders.append(_where(path, node.value))
    assert not offenders, offenders


def _mentions_mode(node) -> bool:
    return any(isinstance(n, ast.Constant) and n.value == "mode" or isinstance(n, ast.Attribute) and n.attr == "mode"
               for n in ast.walk(node))


def _constants_in(nodes):
    for node in nodes:
        yield from (n for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str))


def _where(path: Path, node) -> str:
    return f"{path.relative_to(ROOT)}:{node.lineno}"


def test_the_rule_checker_would_see_a_mode_literal(tmp_path):
    """The check above is not vacuous: it finds the shapes it looks for."""
    sample = tmp_path / "sample.py"
    sample.write_text('if chat.mode == "bot":\n    pass\nx = {"mode": "queued"}\nupdate(mode="agent")\n')
    tree = ast.parse(sample.read_text())
    compares = [n for n in ast.walk(tree) if isinstance(n, ast.Compare) and _mentions_mode(n.left)]
    assert [c.value for c in _constants_in(compares[0].comparators)] == ["bot"]
    assert any(isinstance(n, ast.keyword) and n.arg == "mode" for n in ast.walk(tree))


# --- docs/ARCHITECTURE.md and the README's Layout say what is there --------------------------------

ARCHITECTURE = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
FUNCTION_NAMES = sorted(p.parent.name for p in (ROOT / "functions").glob("*/handler.py"))
LAYER_PARTS = sorted(
    p.name if p.is_dir() else p.stem
    for p in LIBRARY.iterdir()
    if not p.name.startswith("__") and (p.is_dir() and (p / "__init__.py").exists() or p.suffix == ".py")
)


def test_every_package_of_the_layer_has_a_row_in_the_module_table_and_a_rule_here():
    for part in LAYER_PARTS:
        assert f"| `{part}/`" in ARCHITECTURE or f"`{part}.py`" in ARCHITECTURE, f"{part}: no row in docs/ARCHITECTURE.md"
        assert part in MAY_IMPORT or part in {"aws", "wiring"}, f"{part}: add it to MAY_IMPORT"


def test_the_architecture_and_the_readme_layout_name_every_function():
    layout = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    for name in FUNCTION_NAMES:
        assert f"`{name}`" in ARCHITECTURE, f"functions/{name}: not among docs/ARCHITECTURE.md's functions"
        assert f"{name}/" in layout.split("functions/", 1)[1], f"functions/{name}: not in the README's Layout"
    for part in LAYER_PARTS:
        assert (f"{part}/" if (LIBRARY / part).is_dir() else f"{part}.py") in layout, f"{part}: not in the README's Layout"


def test_every_cited_domain_rule_exists_and_is_about_what_cites_it():
    """A comment citing "docs/ARCHITECTURE.md rule N" points at rule N of its list; a rule that
    names the citing module's file (as the consent ledger's does) is the one it cites."""
    import re

    rules = dict(re.findall(r"^(\d+)\. (\*\*.*?)(?=^\d+\. \*\*|^## |\Z)", ARCHITECTURE, re.M | re.S))
    assert len(rules) >= 12
    for path in _library_files():
        relative = str(path.relative_to(LIBRARY))
        for number in re.findall(r"ARCHITECTURE\.md rule (\d+)", path.read_text()):
            assert number in rules, f"{relative} cites rule {number}, which docs/ARCHITECTURE.md does not have"
            naming = [n for n, text in rules.items() if f"`{relative}`" in text]
            assert not naming or number in naming, f"{relative} cites rule {number}; rule {naming} is the one about it"
