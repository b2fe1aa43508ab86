"""The rules of the code's layout that neither import-linter nor ruff can check.

import-linter (``lint-imports``) checks which room may import which, and ruff's SLF001 checks
``obj._name`` on objects. What is left is a module's private names reached through the module
itself: ``from sandtrade.x import _name`` and ``x._name`` on an imported sandtrade module. ruff
does not see those for first-party code (its PLC2701 only covers third-party packages).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The trees whose Python files are checked.
CHECKED = ("src", "bench", "tests", "plugins")
#: Generated code, exempt as it is from ruff.
GENERATED = ("src/sandtrade/v1",)
#: Where the first-party packages live: (the folder that holds a package, the package).
PACKAGES = (("src", "sandtrade"), ("plugins/tradingview", "sandtrade_tradingview"))

#: TEMPORARY. Private names that other steps of issue 16 make public, on branches not merged
#: into this one yet: (file, the module's private name) -> the step that removes the use. The
#: lead deletes this list once those branches are merged; an entry that no longer matches
#: fails the test, so that it is deleted with the use.
KNOWN_UNTIL_MERGED: dict[tuple[str, str], str] = {
}


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _python_files() -> Iterator[Path]:
    for tree in CHECKED:
        for path in sorted((ROOT / tree).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if not rel.startswith(GENERATED) and "/." not in rel:
                yield path


def _first_party_modules() -> set[str]:
    """Every module and package of sandtrade and its bundled plugins, by dotted name."""
    modules = set()
    for folder, package in PACKAGES:
        base = ROOT / folder
        for path in (base / package).rglob("*.py"):
            parts = path.relative_to(base).with_suffix("").parts
            modules.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def _own_module(path: Path) -> tuple[str, bool]:
    """The dotted name of a first-party file and whether it is a package, else ("", False)."""
    for folder, package in PACKAGES:
        base = ROOT / folder
        if path.is_relative_to(base / package):
            parts = path.relative_to(base).with_suffix("").parts
            if parts[-1] == "__init__":
                return ".".join(parts[:-1]), True
            return ".".join(parts), False
    return "", False


def _absolute(node: ast.ImportFrom, path: Path) -> str:
    """The module a ``from ... import`` reads, relative imports resolved."""
    if not node.level:
        return node.module or ""
    own, is_package = _own_module(path)
    parts = own.split(".")
    base = parts if is_package else parts[:-1]
    base = base[:len(base) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str | None:
    """``a.b.c`` as the dotted module path it names, through the file's import aliases."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value, aliases)
        return None if head is None else f"{head}.{node.attr}"
    return None


def _private_uses(path: Path, modules: set[str]) -> Iterator[tuple[int, str]]:
    """``(line, "module._name")`` for each private name of another first-party module that
    ``path`` imports or reads through the module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    own, _ = _own_module(path)
    aliases: dict[str, str] = {}  # a local name -> the first-party module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] not in {p for _, p in PACKAGES}:
                    continue
                if a.asname:
                    aliases[a.asname] = a.name
                else:  # `import a.b.c` binds `a`
                    aliases[a.name.split(".")[0]] = a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, path)
            if module not in modules:
                continue
            for a in node.names:
                if _is_private(a.name) and module != own:
                    yield node.lineno, f"{module}.{a.name}"
                if f"{module}.{a.name}" in modules:
                    aliases[a.asname or a.name] = f"{module}.{a.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            module = _dotted(node.value, aliases)
            if module in modules and module != own:
                yield node.lineno, f"{module}.{node.attr}"


def test_no_module_imports_another_modules_private_names() -> None:
    modules = _first_party_modules()
    found: dict[tuple[str, str], list[int]] = {}
    for path in _python_files():
        rel = path.relative_to(ROOT).as_posix()
        for line, name in _private_uses(path, modules):
            found.setdefault((rel, name), []).append(line)
    uses = [f"{rel}:{lines[0]}: {name} is private to its module; make it a public name "
            "there (or move what uses it into that module)"
            for (rel, name), lines in sorted(found.items())
            if (rel, name) not in KNOWN_UNTIL_MERGED]
    stale = [f"{rel}: no longer uses {name}: delete its KNOWN_UNTIL_MERGED entry ({step})"
             for (rel, name), step in KNOWN_UNTIL_MERGED.items() if (rel, name) not in found]
    assert not uses + stale, "\n".join(uses + stale)


def test_the_private_name_check_finds_both_forms(tmp_path: Path) -> None:
    """The checker itself: an import of a private name, and one read through its module."""
    source = tmp_path / "user.py"
    source.write_text("from sandtrade.strategy.context import _check_number\n"
                      "from sandtrade.strategy import ta as indicators\n"
                      "import sandtrade.store.sqlite\n"
                      "import sandtrade.backtest.engine as engine\n"
                      "indicators.Series, indicators._hidden, engine._nothing\n"
                      "sandtrade.store.sqlite._M, obj._private, indicators.__name__\n")
    assert sorted(_private_uses(source, _first_party_modules())) == [
        (1, "sandtrade.strategy.context._check_number"),
        (5, "sandtrade.backtest.engine._nothing"),
        (5, "sandtrade.strategy.ta._hidden"),
        (6, "sandtrade.store.sqlite._M"),
    ]
