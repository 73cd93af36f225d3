"""The package-level import graph of autodistill, and every arrow that points up the layer table.

    python scripts/import_graph.py [PACKAGE_DIR]      # default: autodistill/ beside this script

Prints one line per part of the package (a first-level module or sub-package) with the parts it
imports and in how many of its files (`distill -> config(8), errors(9)`), then every UPWARD arrow:
an import, at module level or inside a function, of a part ranked higher in `LAYERS` than the
importer. Exits 0 either way (it is a report); tests/test_layers.py fails on any upward arrow.

`LAYERS` is the one copy of the layer table, top to bottom; a part may import its own rank and
every rank below it. A string naming a module (`importlib.import_module("autodistill.x")`, a
registry's lazy `"module:attr"` entry) is no import here: it is resolved on first use.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "autodistill"
DEFAULT_ROOT = Path(__file__).resolve().parents[1] / PACKAGE

# top to bottom; "__init__" is the package's public API (autodistill/__init__.py)
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cli", "__init__"),
    ("export", "report", "layers"),
    ("distill_run", "study"),
    ("preflight",),
    ("advisors",),
    ("supernet",),
    ("tasks",),
    ("distill",),
    ("evaluation", "models", "data"),
    ("losses", "capture", "modes", "precision", "atomic_file", "interrupts", "tables"),
    ("config", "space", "objectives"),
    ("errors", "registry", "registries", "paths", "lazy_exports"),
)
RANK = {part: len(LAYERS) - i for i, parts in enumerate(LAYERS) for part in parts}


@dataclass(frozen=True)
class Arrow:
    """`file` (relative to the package) of part `source` imports `module`, of part `target`."""

    source: str
    target: str
    file: str
    module: str

    @property
    def upward(self) -> bool:
        return RANK.get(self.target, len(LAYERS) + 1) > RANK.get(self.source, 0)


def part_of(file: Path, root: Path) -> str:
    """The first-level part a file of the package belongs to (`distill/distiller.py` -> `distill`)."""
    return file.relative_to(root).parts[0].removesuffix(".py")


def imported_modules(file: Path, root: Path) -> Iterator[str]:
    """Every module of the package that `file` imports, anywhere in it (relative ones resolved;
    `from autodistill import x` names the part `x` where it is one, else the public API)."""
    rel = file.relative_to(root)
    package = [PACKAGE, *rel.parts[:-1]]  # where its relative imports start
    parts = {p.name.removesuffix(".py") for p in root.iterdir() if p.suffix == ".py" or p.is_dir()}
    for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(m for m in (base, node.module or "") if m)
            if module == PACKAGE:
                yield from (f"{PACKAGE}.{a.name}" if a.name in parts else f"{PACKAGE}.__init__"
                            for a in node.names)
            elif module.split(".")[0] == PACKAGE:
                yield module


def arrows(root: Path = DEFAULT_ROOT) -> list[Arrow]:
    """Every import of one part of the package by another, one per (file, module)."""
    found = set()
    for file in sorted(root.rglob("*.py")):
        source = part_of(file, root)
        for module in imported_modules(file, root):
            bits = module.split(".")
            target = bits[1] if len(bits) > 1 else "__init__"
            if target != source:
                found.add(Arrow(source, target, str(file.relative_to(root)), module))
    return sorted(found, key=lambda a: (a.source, a.target, a.file, a.module))


def unranked(root: Path = DEFAULT_ROOT) -> list[str]:
    """Parts of the package the layer table gives no rank."""
    parts = {part_of(f, root) for f in root.rglob("*.py")}
    return sorted(parts - set(RANK))


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else DEFAULT_ROOT
    found = arrows(root)
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for arrow in found:
        graph[arrow.source][arrow.target].add(arrow.file)
    for source in sorted(graph):
        targets = graph[source]
        print(source, "->", ", ".join(f"{t}({len(files)})" for t, files in sorted(targets.items())))
    up = [a for a in found if a.upward]
    print(f"\nupward arrows ({len(up)}):")
    for arrow in up:
        print(f"  {arrow.source} -> {arrow.target}: {arrow.file} imports {arrow.module}")
    for part in unranked(root):
        print(f"  {part}: no rank in LAYERS (scripts/import_graph.py); give it one")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
