"""The registries a config names (autodistill/registries.py): built-ins known by name before their
code is imported, resolved once on first use, extended by users as before."""

from __future__ import annotations

import sys

import pytest

from autodistill import registries
from autodistill.config.tasks import DEFAULT_TASK, infer_task
from autodistill.errors import ConfigError
from autodistill.registry import Registry

ALL = ("LOSSES", "TARGET_LOSSES", "OPTIMIZERS", "SCHEDULES", "ADVISORS", "TASK_KINDS")


@pytest.fixture
def lazy(tmp_path, monkeypatch):
    (tmp_path / "h1_lazy_target.py").write_text("def thing():\n    return 'made'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "h1_lazy_target", raising=False)
    return Registry("gadget", {"Thing": "h1_lazy_target:thing"})


def test_a_builtin_is_listed_and_checked_without_importing_its_module(lazy):
    assert "thing" in lazy and lazy.names() == ["Thing"] and lazy.check("THING") == "THING"
    with pytest.raises(ConfigError, match=r"^unknown gadget 'thin' \(did you mean 'Thing'\?\); allowed: Thing$"):
        lazy.check("thin")
    assert "h1_lazy_target" not in sys.modules


def test_a_builtin_is_imported_on_its_first_get_and_kept(lazy):
    thing = lazy.get("thing")
    assert thing() == "made" and "h1_lazy_target" in sys.modules
    del sys.modules["h1_lazy_target"]
    assert lazy.get("Thing") is thing  # resolved once: not imported again


def test_a_builtin_name_is_taken_until_unregistered(lazy):
    with pytest.raises(ConfigError, match="gadget 'thing' is already registered"):
        lazy.register("thing", object())
    lazy.unregister("Thing")
    assert lazy.names() == [] and lazy.register("thing", len) is len and lazy.get("THING") is len


@pytest.mark.parametrize("name", ALL)
def test_every_builtin_of_every_registry_resolves(name):
    registry = getattr(registries, name)
    assert registry.names()
    for entry in registry:
        value = registry.get(entry)
        assert callable(value) or getattr(value, "name", None) == entry, f"{name}: {entry}"


def test_the_engine_modules_hand_out_the_same_registries():
    from autodistill import LOSSES, TARGET_LOSSES
    from autodistill.advisors import ADVISORS
    from autodistill.distill.optimization import OPTIMIZERS, SCHEDULES
    from autodistill.tasks import TASK_KINDS

    assert (LOSSES, TARGET_LOSSES, OPTIMIZERS, SCHEDULES, ADVISORS, TASK_KINDS) == tuple(
        getattr(registries, n) for n in ALL)


def test_a_task_follows_the_model_class():
    assert infer_task("BertForMaskedLM") == "masked_lm"
    assert infer_task("AutoModelForTokenClassification") == "token_classification"
    assert infer_task("MyOwnModel") == DEFAULT_TASK == "sequence_classification"
