"""Imports flow one way, from the edge to the core (DESIGN.md section 1): the engine never
imports the search service, Optuna or the CLI; nothing but the CLI imports the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "autodistill"

FORBIDDEN = {
    "capture.py": ("autodistill.distill", "autodistill.study", "autodistill.cli", "optuna"),
    "losses": ("autodistill.distill", "autodistill.study", "autodistill.cli", "optuna"),
    "distill": ("autodistill.study", "autodistill.cli", "optuna"),
    "models": ("autodistill.study", "autodistill.cli", "optuna"),
    "data": ("autodistill.distill", "autodistill.study", "autodistill.cli", "optuna"),
    "evaluation": ("autodistill.study", "autodistill.cli", "optuna"),
    "supernet": ("autodistill.study", "autodistill.cli", "optuna"),
    "tasks": ("autodistill.study", "autodistill.cli", "optuna"),
    "layers.py": ("autodistill.distill", "autodistill.study", "autodistill.cli", "optuna"),
    "modes.py": ("autodistill.distill", "autodistill.study", "autodistill.cli", "optuna"),
    "study": ("autodistill.cli",),
}


def module_imports(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("part, forbidden", sorted(FORBIDDEN.items()))
def test_core_layers_do_not_import_the_edge(part, forbidden):
    target = PACKAGE / part
    files = [target] if target.is_file() else sorted(target.rglob("*.py"))
    assert files
    for file in files:
        for name in module_imports(file):
            assert not any(name == f or name.startswith(f + ".") for f in forbidden), f"{file.name} imports {name}"


def test_help_and_the_package_import_neither_torch_nor_optuna():
    """The package's names load on first use (PEP 562): `autodistill --help` answers at once."""
    import subprocess
    import sys

    code = ("import sys\nimport autodistill\nfrom autodistill.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'optuna', 'transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    import autodistill

    assert autodistill.Distiller.__name__ == "Distiller" and set(autodistill.__all__) <= set(dir(autodistill))
