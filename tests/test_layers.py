"""Imports flow one way, from the edge to the core (DESIGN.md section 1): every part of the
package has a rank in one layer table (scripts/import_graph.py `LAYERS`) and imports nothing
ranked above it, at module level or inside a function; the engine never imports Optuna; config
is the ground floor, and validating a config file imports neither torch, transformers nor Optuna."""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "autodistill"


def _import_graph():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


graph = _import_graph()

# the parts that train and measure models: they never drive a study (Optuna is the study's)
ENGINE = ("capture.py", "losses", "distill", "models", "data", "evaluation", "supernet", "tasks",
          "layers.py", "modes.py", "precision.py")
GROUND = ("config", "errors", "registry", "registries", "paths", "space", "objectives")


def module_imports(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_every_part_of_the_package_has_a_rank():
    assert graph.unranked(PACKAGE) == []
    assert len(graph.RANK) == sum(len(parts) for parts in graph.LAYERS)  # no part ranked twice


def test_no_import_points_up_the_layer_table():
    found = graph.arrows(PACKAGE)
    assert any(a.source == "cli" and a.target == "study" for a in found)  # the walk sees lazy imports
    upward = [f"{a.file} imports {a.module} ({a.source} -> {a.target})" for a in found if a.upward]
    assert upward == []


def test_the_walk_resolves_relative_and_package_imports(tmp_path):
    package = tmp_path / "autodistill"
    (package / "config").mkdir(parents=True)
    (package / "study.py").write_text("")
    (package / "config" / "__init__.py").write_text("from ..study import x\n")
    (package / "config" / "schema.py").write_text(
        "def f():\n    from autodistill import study, LOSSES\n    from . import loader\n")
    modules = {a.module for a in graph.arrows(package)}
    assert modules == {"autodistill.study", "autodistill.__init__"}
    assert all(a.upward for a in graph.arrows(package))


@pytest.mark.parametrize("part", ENGINE)
def test_the_engine_does_not_import_optuna(part):
    target = PACKAGE / part
    files = [target] if target.is_file() else sorted(target.rglob("*.py"))
    assert files
    for file in files:
        for name in module_imports(file):
            assert name.split(".")[0] != "optuna", f"{file.name} imports {name}"


def test_config_imports_only_the_ground():
    allowed = {graph.RANK[part] for part in GROUND}
    for arrow in graph.arrows(PACKAGE):
        if arrow.source == "config":
            assert graph.RANK[arrow.target] in allowed, f"{arrow.file} imports {arrow.module}"


def test_validating_a_config_file_imports_neither_torch_transformers_nor_optuna():
    code = ("import sys\nfrom autodistill.config.loader import load_config_file, load_search_config\n"
            "from autodistill.config.schema import SearchRunConfig\n"
            "config = load_config_file(SearchRunConfig, 'configs/quickstart.yaml')\n"
            "for other in ('configs/mlm.yaml', 'configs/mobilebert.yaml'):\n"
            "    load_config_file(SearchRunConfig, other)\n"
            "load_search_config('configs/quickstart.yaml')\n"
            "assert config.auto_distillation.search.search_algorithm\n"
            "print(sorted(m for m in ('torch', 'optuna', 'transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_script_prints_the_graph_and_exits_0():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "import_graph.py")],
                          capture_output=True, text=True, check=True)
    assert "cli -> " in done.stdout and "upward arrows (" in done.stdout


def test_help_and_the_package_import_neither_torch_nor_optuna():
    """The package's names load on first use (PEP 562): `autodistill --help` answers at once."""
    code = ("import sys\nimport autodistill\nfrom autodistill.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'optuna', 'transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    import autodistill

    assert autodistill.Distiller.__name__ == "Distiller" and set(autodistill.__all__) <= set(dir(autodistill))
