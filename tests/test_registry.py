"""The generic registry: register (called or as a decorator), case-insensitive lookup, unknown names
answered with the choices, duplicates refused, and unregister."""

from __future__ import annotations

import pytest

from autodistill.errors import ConfigError
from autodistill.registry import Registry


@pytest.fixture
def losses() -> Registry[object]:
    registry: Registry[object] = Registry("loss type")
    registry.register("MSE", "mse-object")
    return registry


def test_a_registered_name_is_found_whatever_its_case_and_spaces(losses):
    assert losses.get("MSE") == "mse-object"
    assert losses.get("mse") == losses.get(" Mse ") == "mse-object"
    assert "mse" in losses and "KL" not in losses and 3 not in losses


def test_register_as_a_decorator_returns_the_object_unchanged(losses):
    @losses.register("Cosine")
    def cosine() -> str:
        return "cos"

    assert cosine() == "cos" and losses.get("cosine") is cosine
    assert losses.register("KL", len) is len


def test_names_keep_the_spelling_and_order_they_were_registered_in(losses):
    losses.register("KL", "kl")
    losses.register("Cosine", "cos")
    assert losses.names() == ["MSE", "KL", "Cosine"] == list(losses)


def test_an_unknown_name_names_the_kind_the_choices_and_a_close_one(losses):
    losses.register("KL", "kl")
    with pytest.raises(ConfigError) as caught:
        losses.get("MSEE")
    assert str(caught.value) == "unknown loss type 'MSEE' (did you mean 'MSE'?); allowed: MSE, KL"
    with pytest.raises(ConfigError, match=r"^unknown loss type 'zzz'; allowed: MSE, KL$"):
        losses.get("zzz")  # nothing close: no guess


def test_a_second_registration_of_a_name_is_refused_in_any_case(losses):
    with pytest.raises(ConfigError, match=r"loss type 'mse' is already registered; .*unregister\('mse'\)"):
        losses.register("mse", "other")
    with pytest.raises(ConfigError, match="already registered"):
        losses.register("MSE")(lambda: None)
    assert losses.get("MSE") == "mse-object"  # the first stays


def test_unregister_frees_the_name_and_ignores_unknown_ones(losses):
    losses.unregister("mse")
    losses.unregister("never-registered")
    assert "MSE" not in losses and losses.names() == []
    with pytest.raises(ConfigError, match="allowed: $"):
        losses.get("MSE")
    losses.register("MSE", "again")
    assert losses.get("mse") == "again"
