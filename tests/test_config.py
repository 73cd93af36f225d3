"""Config: the seeds' formats load as written; bad configs get one message naming file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_seed_entry_points import seed003_advanced_config

from autodistill import ConfigError, load_distillation_plan
from autodistill.config.stages import parse_index

FIXTURES = Path(__file__).parent / "fixtures"


def test_seed003_flash_distillation_yaml_loads_as_written():
    plan = load_distillation_plan(FIXTURES / "seed003_flash_distillation.yaml")
    (stage,) = plan.stages
    assert stage.optimizer.name == "SGD" and stage.optimizer.learning_rate == 0.001
    att, out = stage.mappings
    assert (att.student, att.student_index, att.teacher, att.teacher_index) == (
        "mobilebert.encoder.layer.0.attention.self", (1,), "bert.encoder.layer.0.attention.self", (1,))
    assert (att.loss, att.weight, out.loss, out.weight) == ("KL", 0.5, "MSE", 0.5)
    assert out.student_index == () and not stage.add_origin_loss


def test_seed003_regular_distillation_yaml_loads_as_written():
    (stage,) = load_distillation_plan(FIXTURES / "seed003_regular_distillation.yaml").stages
    (m,) = stage.mappings
    assert (m.student, m.teacher, m.loss, m.weight) == ("mobilebert.output", "bert.output", "KL", 1.0)
    assert stage.add_origin_loss and stage.logit_kd is None


def test_seed003_knowledge_distillation_loss_is_logit_kd():
    (stage,) = load_distillation_plan(FIXTURES / "seed003_knowledge_distillation.yaml").stages
    assert stage.mappings == ()
    assert stage.logit_kd.loss_types == ("CE", "CE") and stage.logit_kd.loss_weights == (0.5, 0.5)


def test_seed003_auto_distillation_yaml_loads_flash_then_regular():
    plan = load_distillation_plan(FIXTURES / "seed003_auto_distillation.yaml")
    flash, regular = plan.stages
    assert flash.kind == "flash" and flash.train_steps == 5000
    assert flash.trainable == ("mobilebert.encoder.layer.0",)
    assert [m.loss for m in flash.mappings] == ["KL", "MSE"]
    assert regular.kind == "regular" and regular.add_origin_loss and regular.mappings[0].loss == "KL"


def test_seed003_python_dict_with_24_blocks_and_nested_regular_form():
    """Seed 003's advanced-mode `autodistillation_config` as written (knowledge_transfer and the
    regular stage nested under flash_distillation, tuples, one-block lists), with the three commas
    its page drops after 'metrics', 'higher_is_better' and 'max_trials' put back."""
    config = seed003_advanced_config()  # the dict as the seed writes it (test_seed_entry_points)
    plan = load_distillation_plan(config)
    assert len(plan.stages) == 25
    assert [s.trainable for s in plan.stages[:24]] == [(f"mobilebert.encoder.layer.{i}",) for i in range(24)]
    regular = plan.stages[-1]
    assert regular.train_steps == 25000 and regular.add_origin_loss
    assert regular.mappings[0].student_index == (0,) and regular.mappings[0].loss == "KL"


def test_output_indices_parse():
    assert parse_index("1") == (1,)
    assert parse_index("1.0") == (1, 0)
    assert parse_index(2) == (2,)
    assert parse_index("") == ()
    assert parse_index("logits") == ("logits",)
    assert parse_index("hidden_states.3") == ("hidden_states", 3)


def _write(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


def test_malformed_yaml_names_line_and_column(tmp_path):
    path = _write(tmp_path, "distillation:\n  regular_distillation: {train_steps: 3\n  seed: 1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+:\d+: malformed YAML"):
        load_distillation_plan(path)


def test_unknown_key_names_file_line_key_and_nearest(tmp_path):
    path = _write(tmp_path, "distillation:\n  regular_distillation:\n    train_step: 3\n")
    with pytest.raises(ConfigError) as err:
        load_distillation_plan(path)
    message = str(err.value)
    assert "bad.yaml:3:5" in message
    assert "distillation.regular_distillation.train_step: unknown key" in message
    assert "did you mean 'train_steps'" in message


def test_wrong_type_names_the_key_and_value(tmp_path):
    path = _write(tmp_path, "distillation:\n  regular_distillation:\n    train_steps: many\n")
    where = r"bad\.yaml:3:\d+: distillation\.regular_distillation\.train_steps: .*'many'"
    with pytest.raises(ConfigError, match=where):
        load_distillation_plan(path)


def test_unknown_loss_type_lists_the_allowed_values(tmp_path):
    path = _write(tmp_path,
                  "distillation:\n  regular_distillation:\n    layer_mappings: [[a, b]]\n    loss_types: [L7]\n")
    with pytest.raises(ConfigError, match=r"loss_types.*unknown loss type 'L7'.*allowed: MSE, KL, CE, cosine"):
        load_distillation_plan(path)


def test_no_stage_at_all_is_an_error():
    with pytest.raises(ConfigError, match="flash_distillation, regular_distillation"):
        load_distillation_plan({"seed": 3})


def test_epochs_and_steps_together_are_rejected():
    with pytest.raises(ConfigError, match="train_steps or epochs"):
        load_distillation_plan({"regular_distillation": {"train_steps": 3, "epochs": 1}})


TEMPLATE = {
    "flash_distillation": {
        "block_names": "bert.encoder.layer.{i}",
        "layer_mappings_for_knowledge_transfer": [
            ["bert.encoder.layer.{i}.attention.self", "1", "bert.encoder.layer.{t}.attention.self", "1"],
            ["bert.encoder.layer.{i}.output", "bert.encoder.layer.{t}.output"]],
        "loss_types": ["KL", "MSE"],
        "train_steps": 5,
    },
    "regular_distillation": {"train_steps": 7},
}


@pytest.mark.parametrize("depth, teacher_layers", [(2, [2, 5]), (4, [1, 2, 4, 5]), (6, [0, 1, 2, 3, 4, 5]), (1, [5])])
def test_flash_template_follows_the_student_depth(depth, teacher_layers):
    from autodistill.config.loader import load_distillation_section

    section = load_distillation_section(TEMPLATE)
    assert section.depends_on_depth
    plan = section.plan(student_layers=depth, teacher_layers=6)
    flash = plan.stages[:-1]
    assert [s.trainable for s in flash] == [(f"bert.encoder.layer.{i}",) for i in range(depth)]
    assert [s.mappings[1].teacher for s in flash] == [f"bert.encoder.layer.{t}.output" for t in teacher_layers]
    assert all(s.train_steps == 5 and [m.loss for m in s.mappings] == ["KL", "MSE"] for s in flash)
    assert plan.stages[-1].name == "regular"


def test_flash_template_without_depth_is_a_clear_error():
    with pytest.raises(ConfigError, match="template.*depth"):
        load_distillation_plan(TEMPLATE)


def test_flash_template_errors_name_the_key_without_internal_tags():
    bad = {**TEMPLATE, "flash_distillation": {**TEMPLATE["flash_distillation"], "train_steps": [5]}}
    with pytest.raises(ConfigError) as err:
        load_distillation_plan(bad)
    assert "<config>: flash_distillation.train_steps: " in str(err.value)
    assert "<template>" not in str(err.value)
