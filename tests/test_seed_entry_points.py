"""The seeds' entry points as written (issue 14): seed 003's `AutoDistillation(model_builder, config)`
with `agent.train_func = ...`, its `autodistillation_config` dicts and YAML, its Trainer API
`trainer.autodistillation(...)`, and seed 001's tuple batches."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import optuna
import pytest
import torch
from conftest import SEQ, VOCAB, tiny_bert, toy_batches
from optuna.trial import TrialState
from torch import nn
from transformers import (
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
    BertForPreTraining,
    MobileBertConfig,
    MobileBertForPreTraining,
    TrainingArguments,
)

from autodistill import DistillationTrainer
from autodistill.config import load_distillation_plan
from autodistill.config.loader import load_search_config
from autodistill.data.adaptor import DataAdaptor, TupleBatchError
from autodistill.errors import ConfigError, InvalidArchitecture
from autodistill.models.builders import check_architecture, student_config
from autodistill.models.init_from_teacher import init_from_teacher
from autodistill.space import Architecture
from autodistill.study.protocol import FunctionTask
from autodistill.study.search import AutoDistillation

FIXTURES = Path(__file__).parent / "fixtures"


def seed003_oob_config() -> dict:
    """Seed 003's OOB-mode `trainer.autodistillation_config`, as written."""
    return {
        'search': {
            'search_space': {
                'hidden_size': [128, 246, 384, 512],
                'intra_bottleneck_size': [64, 96, 128, 160],
                'num_attention_heads': [1, 2, 4, 8],
                'intermediate_size': [384, 512, 640],
                'num_feedforward_networks': [2, 4, 6]
            }
        },
        'flash_distillation': {
            'knowledge_transfer': {
                'block_names':
                    ['mobilebert.encoder.layer.{}'.format(i) for i in range(24)],
                'layer_mappings_for_knowledge_transfer':
                    [
                        [
                            (
                                'mobilebert.encoder.layer.{}.attention.self'.format(i), '1',
                                'bert.encoder.layer.{}.attention.self'.format(i), '1'
                            ),
                            (
                                'mobilebert.encoder.layer.{}.output'.format(i),
                                'bert.encoder.layer.{}.output'.format(i)
                            )
                        ] for i in range(24)
                    ],
                'loss_types': [['KL', 'MSE'] for i in range(24)],
            },
            'regular_distillation': {
                'layer_mappings_for_knowledge_transfer': [
                    [('cls', '0', 'cls', '0')]
                ],
                'loss_types': [['KL']],
                'add_origin_loss': [True],
            },
        }
    }


def seed003_advanced_config() -> dict:
    """Seed 003's advanced-mode dict, as written (the seed's page drops three commas after
    'metrics', 'higher_is_better' and 'max_trials', which Python needs)."""
    return {
        'search': {
            'search_space': {
                'hidden_size': [128, 246, 384, 512],
                'intra_bottleneck_size': [64, 96, 128, 160],
                'num_attention_heads': [1, 2, 4, 8],
                'intermediate_size': [384, 512, 640],
                'num_feedforward_networks': [2, 4, 6]
            },
            'search_algorithm': 'BO',
            'metrics': ['accuracy', 'latency'],
            'higher_is_better': [True, False],
            'max_trials': 10,
            'seed': 42
        },
        'flash_distillation': {
            'knowledge_transfer': {
                'block_names':
                    ['mobilebert.encoder.layer.{}'.format(i) for i in range(24)],
                'layer_mappings_for_knowledge_transfer':
                    [
                        [
                            (
                                'mobilebert.encoder.layer.{}.attention.self'.format(i), '1',
                                'bert.encoder.layer.{}.attention.self'.format(i), '1'
                            ),
                            (
                                'mobilebert.encoder.layer.{}.output'.format(i),
                                'bert.encoder.layer.{}.output'.format(i)
                            )
                        ] for i in range(24)
                    ],
                'loss_types': [['KL', 'MSE'] for i in range(24)],
                'loss_weights': [[0.5, 0.5] for i in range(24)],
                'train_steps': [500 for i in range(24)]
            },
            'regular_distillation': {
                'layer_mappings_for_knowledge_transfer': [
                    [('cls', '0', 'cls', '0')]
                ],
                'loss_types': [['KL']],
                'add_origin_loss': [True],
                'train_steps': [25000]
            },
        }
    }


SEED003_KD_YAML = """\
model:
  name: mobilebert_distillation
  framework: pytorch
distillation:
  train:
    optimizer:
      SGD:
        learning_rate: 0.001
    criterion:
      KnowledgeDistillationLoss:
        temperature: 1.0,
        loss_types: ['CE', 'CE']
        loss_weights: [0.5, 0.5]
"""


def tiny_from_seed_space(arch) -> nn.Module:
    """A tiny BERT standing in for seed 003's MobileBERT (its space's keys, scaled down)."""
    hidden = {128: 8, 246: 12, 384: 16, 512: 24}[arch["hidden_size"]]
    heads = 2 if arch["num_attention_heads"] > 1 else 1
    return tiny_bert(hidden=hidden, layers=1, heads=heads)


def accuracy_only(model) -> dict:
    """An eval function that returns accuracy and no latency (as seed 003's users write)."""
    return {"accuracy": 1.0 - 1.0 / (1 + model.config.hidden_size)}


# -- seed 003's dicts and YAML load as written ------------------------------------------------
def test_seed003_oob_dict_loads_as_written_with_search_and_25_stages():
    config = load_search_config(seed003_oob_config())
    assert config.search.max_trials == 10 and config.search.search_algorithm == "BO"
    plan = load_distillation_plan(seed003_oob_config())
    assert len(plan.stages) == 25 and plan.stages[0].train_steps is None  # the Trainer's max_steps
    assert plan.stages[0].mappings[0].loss == "KL" and plan.stages[0].mappings[1].loss == "MSE"
    regular = plan.stages[-1]
    assert regular.add_origin_loss and regular.mappings[0].student == "cls"


def test_seed003_advanced_dict_loads_as_written():
    plan = load_distillation_plan(seed003_advanced_config())
    assert [s.train_steps for s in plan.stages] == [500] * 24 + [25000]
    assert all(m.weight == 0.5 for s in plan.stages[:24] for m in s.mappings)


def test_a_key_beside_knowledge_transfer_names_where_it_belongs():
    config = seed003_oob_config()
    config["flash_distillation"]["train_steps"] = [1]
    with pytest.raises(ConfigError, match=r"flash_distillation.*\['train_steps'\].*knowledge_transfer"):
        load_distillation_plan(config)


def test_seed003_yaml_typo_trailing_comma_is_a_clear_error(tmp_path):
    """Seed 003's own distillation YAML as written: `temperature: 1.0,` is the string '1.0,'."""
    path = tmp_path / "kd.yaml"
    path.write_text(SEED003_KD_YAML)
    with pytest.raises(ConfigError) as err:
        load_distillation_plan(path)
    message = str(err.value)
    assert "kd.yaml:11:9: distillation.train.criterion.KnowledgeDistillationLoss.temperature" in message
    assert "'1.0,'" in message and "write temperature: 1.0" in message


# -- AutoDistillation(model_builder, config) in seed 003's order --------------------------------
def test_seed003_agent_with_functions_set_after_construction_measures_latency_itself(tmp_path, monkeypatch):
    """Seed 003's calls: `AutoDistillation(model_builder, config)`, then `agent.train_func = ...`,
    `agent.eval_func = ...`, `agent.search_loop()`, with the advanced dict verbatim. The eval
    function returns no latency: the search times each student (and counts params and size).
    The study lives at the documented defaults."""
    monkeypatch.chdir(tmp_path)
    agent = AutoDistillation(tiny_from_seed_space, seed003_advanced_config())
    assert not (tmp_path / "runs").exists()  # nothing opened before the functions are set
    agent.train_func = lambda model: model
    agent.eval_func = accuracy_only
    best = agent.search_loop()
    assert (tmp_path / "runs" / "autodistillation" / "study.db").is_file()
    assert agent.study.study_name == "autodistillation"
    done = agent.study.get_trials(states=(TrialState.COMPLETE,))
    assert done and len([t for t in agent.study.trials if t.state != TrialState.RUNNING]) >= 10
    for trial in done:
        figures = trial.user_attrs
        assert figures["latency_p50_ms"] > 0 and figures["params"] > 0 and figures["size_mb"] > 0
        assert trial.values[1] == figures["latency_p50_ms"]
    assert best and all(isinstance(a, Architecture) for a in best)


def test_the_seed003_auto_distillation_yaml_names_the_study_and_its_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    agent = AutoDistillation(tiny_from_seed_space, str(FIXTURES / "seed003_auto_distillation.yaml"),
                             train_func=lambda m: m, eval_func=accuracy_only)
    assert agent.study.study_name == "MobileBERT_NAS"  # model.name
    assert agent.storage_url == "sqlite:///runs/autodistillation/study.db"
    assert agent.config.max_trials == 10


def test_a_whole_search_file_gives_its_search_output_dir_and_study_name(workspace, tmp_path):
    path = tmp_path / "search.yaml"
    path.write_text(f"""
model: {{name: tiny}}
teacher: {{model: {workspace / 'teacher'}}}
data: {{train_file: {workspace / 'train.csv'}, validation_file: {workspace / 'dev.csv'}}}
auto_distillation:
  search: {{search_space: {{hidden_size: [8, 16]}}, max_trials: 2}}
  regular_distillation: {{train_steps: 1}}
output_dir: {tmp_path / 'out'}
""")
    agent = AutoDistillation(tiny_from_seed_space, str(path), train_func=lambda m: m, eval_func=accuracy_only)
    assert agent.study.study_name == "tiny" and agent.output_dir == tmp_path / "out"
    assert (tmp_path / "out" / "study.db").is_file() and agent.config.max_trials == 2


def test_a_bad_config_dict_is_one_config_error(tmp_path):
    bad = seed003_advanced_config()
    bad["search"]["max_trials"] = 0
    with pytest.raises(ConfigError, match=r"search\.max_trials"):
        AutoDistillation(tiny_from_seed_space, bad, output_dir=tmp_path)
    with pytest.raises(ConfigError, match="'search' .* or 'search_space'"):
        AutoDistillation(tiny_from_seed_space, {"serch": {}}, output_dir=tmp_path)
    with pytest.raises(ConfigError, match="got list"):
        AutoDistillation(tiny_from_seed_space, [1, 2], output_dir=tmp_path)


def test_search_loop_without_a_train_func_names_it(tmp_path):
    agent = AutoDistillation(tiny_from_seed_space, seed003_oob_config()["search"], output_dir=tmp_path)
    agent.eval_func = accuracy_only
    with pytest.raises(ConfigError, match="agent.train_func"):
        agent.search_loop()


def test_a_search_that_cannot_time_its_students_stops_naming_cost_func(tmp_path):
    from autodistill.study.outcomes import SearchStopped

    agent = AutoDistillation(lambda a: nn.Linear(4, a["width"]), {"search_space": {"width": [2, 4]},
                                                                  "search_algorithm": "random", "max_trials": 2,
                                                                  "max_consecutive_failures": 1},
                             output_dir=tmp_path, progress=False)
    agent.train_func, agent.eval_func = (lambda m: m), (lambda m: {"accuracy": 0.5})
    with pytest.raises(SearchStopped, match="no config.vocab_size .* cost_func"):
        agent.search_loop()


def test_latency_of_a_model_without_vocab_size_asks_for_a_cost_func():
    from autodistill.objectives import LATENCY

    task = FunctionTask(lambda a: nn.Linear(4, 2), train_func=lambda m: m, eval_func=lambda m: {"accuracy": 0.5},
                        measured=[LATENCY])
    with pytest.raises(ConfigError, match="cost_func"):
        task.evaluate(nn.Linear(4, 2))
    given = FunctionTask(lambda a: nn.Linear(4, 2), train_func=lambda m: m,
                         eval_func=lambda m: {"accuracy": 0.5, "latency_p50_ms": 2.0}, measured=[LATENCY])
    assert given.evaluate(nn.Linear(4, 2)) == {"accuracy": 0.5, "latency_p50_ms": 2.0}  # not timed again


# -- seed 001's tuple batches ------------------------------------------------------------------
def _tuple_batch():
    ids = torch.randint(1, VOCAB, (4, SEQ))
    mask = torch.ones_like(ids)
    mask[:, SEQ // 2:] = 0
    return ids, mask, torch.zeros_like(ids), torch.tensor([0, 1, 0, 1])


def test_seed001_tuple_batches_map_by_position_and_use_the_mask():
    ids, mask, types, labels = batch = _tuple_batch()
    adaptor = DataAdaptor()
    assert adaptor.labels(batch) is labels and adaptor.attention_mask(batch) is mask
    inputs = adaptor.student_inputs(batch, with_labels=True)
    assert inputs.args == () and set(inputs.kwargs) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    assert adaptor.teacher_inputs(batch).kwargs.keys() == {"input_ids", "attention_mask", "token_type_ids"}
    model = tiny_bert().eval()
    with torch.no_grad():  # the mask is applied: padding does not change the logits
        out = model(**adaptor.teacher_inputs(batch).kwargs).logits
        changed = model(**adaptor.teacher_inputs((ids.masked_fill(mask == 0, 7), mask, types, labels)).kwargs).logits
    torch.testing.assert_close(out, changed)


def test_a_distiller_trains_on_seed001_tuple_batches_with_their_labels(teacher, student):
    """The student gets the tuple's labels for its own loss (add_origin_loss), which a tuple
    read as (inputs, labels) never gave it."""
    from autodistill import Distiller

    batches = [(b["input_ids"], b["attention_mask"], torch.zeros_like(b["input_ids"]), b["labels"])
               for b in toy_batches(3)]
    plan = load_distillation_plan({"progress": False, "regular_distillation": {
        "add_origin_loss": True, "loss_weights": [0.0, 1.0], "train_steps": 3}})
    before = {k: v.clone() for k, v in student.state_dict().items()}
    result = Distiller(teacher, student, plan).fit(batches)
    assert len(result.losses) == 3 and all(loss > 0 for loss in result.losses)
    assert any(not torch.equal(before[k], v) for k, v in student.state_dict().items())


def test_tuple_batches_of_other_lengths_ask_for_dicts_or_an_adaptor():
    ids, mask, _, labels = _tuple_batch()
    with pytest.raises(TupleBatchError, match="dict batches .* DataAdaptor subclass"):
        DataAdaptor().labels((ids, mask, labels))
    pair = (ids, labels)  # (inputs, labels) keeps its meaning
    assert DataAdaptor().labels(pair) is labels and DataAdaptor().teacher_inputs(pair).args == (ids,)


# -- seed 003's Trainer API ----------------------------------------------------------------------
class ToyData(torch.utils.data.Dataset):
    """label = first token in the upper half of the vocabulary."""

    def __init__(self, n: int, seed: int) -> None:
        self.ids = torch.randint(1, VOCAB, (n, SEQ), generator=torch.Generator().manual_seed(seed))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ids = self.ids[i]
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                "labels": torch.tensor(int(ids[0] >= VOCAB // 2))}


def _compute_metrics(prediction) -> dict[str, float]:
    logits, labels = prediction
    return {"accuracy": float((logits.argmax(-1) == labels).mean())}


def _trainer(tmp_path, teacher) -> DistillationTrainer:
    args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to=[], use_cpu=True, max_steps=2,
                             per_device_train_batch_size=8, per_device_eval_batch_size=16, disable_tqdm=True)
    return DistillationTrainer(model=teacher, args=args, train_dataset=ToyData(32, 0), eval_dataset=ToyData(16, 1),
                               compute_metrics=_compute_metrics)


def tiny_oob_config() -> dict:
    """Seed 003's OOB dict in its own form (knowledge_transfer per block by comprehension, tuples,
    the regular stage nested), for a 2-layer tiny BERT."""
    return {
        'search': {
            'search_space': {'hidden_size': [16, 32], 'intermediate_size': [32, 64]},
            'search_algorithm': 'random', 'max_trials': 3, 'seed': 0,
        },
        'flash_distillation': {
            'knowledge_transfer': {
                'block_names': ['bert.encoder.layer.{}'.format(i) for i in range(2)],
                'layer_mappings_for_knowledge_transfer': [
                    [('bert.encoder.layer.{}.attention.self'.format(i), '1',
                      'bert.encoder.layer.{}.attention.self'.format(i), '1'),
                     ('bert.encoder.layer.{}.output'.format(i), 'bert.encoder.layer.{}.output'.format(i))]
                    for i in range(2)],
                'loss_types': [['KL', 'MSE'] for i in range(2)],
            },
            'regular_distillation': {
                'layer_mappings_for_knowledge_transfer': [[('classifier', 'classifier')]],
                'loss_types': [['KL']],
                'add_origin_loss': [True],
            },
        },
    }


def test_trainer_autodistillation_oob_mode_builds_trains_and_times_students(tmp_path):
    """OOB mode: students are the teacher's config with the sampled keys replaced, distilled with
    the config's stages on the Trainer's data, evaluated with its compute_metrics, timed by the
    search; the study is stored under args.output_dir and the Trainer's model is restored."""
    teacher = tiny_bert(hidden=32, layers=2, heads=4, seed=0)
    trainer = _trainer(tmp_path, teacher)
    trainer.autodistillation_config = tiny_oob_config()
    best = trainer.autodistillation(teacher, model_cls=AutoModelForSequenceClassification)
    assert best and all(set(a) == {"hidden_size", "intermediate_size"} for a in best)
    assert (tmp_path / "out" / "study.db").is_file() and trainer.model is teacher
    study = optuna.load_study(study_name="autodistillation", storage=f"sqlite:///{tmp_path / 'out' / 'study.db'}")
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert done and all(t.user_attrs["latency_p50_ms"] > 0 and "loss" in t.user_attrs for t in done)
    for trial in done:  # the teacher's config with the sampled keys replaced
        saved = AutoModelForSequenceClassification.from_pretrained(trial.user_attrs["student_path"]).config
        assert (saved.hidden_size, saved.intermediate_size) == (trial.params["hidden_size"],
                                                                 trial.params["intermediate_size"])
        assert saved.num_hidden_layers == 2 and saved.vocab_size == VOCAB
    assert trainer.distillation_result is not None
    assert [s.name for s in trainer.distillation_result.stages][-1] == "regular"


@pytest.mark.parametrize("save, writes", [({}, 0), ({"save_steps": 1}, 2 * 3), ({"save_strategy": "epoch"}, 2 * 3)])
def test_oob_trials_write_distillation_checkpoints_only_when_asked(tmp_path, monkeypatch, save, writes):
    """Under default TrainingArguments a trial's distill() writes no checkpoint (it wrote one at
    every stage end); an explicit save_strategy / save_steps is honoured (two trials, 2 flash
    stages + the regular one, one step each: a write at each stage end)."""
    from autodistill.distill.checkpoint import Checkpointer

    calls: list[int] = []
    original = Checkpointer.write
    monkeypatch.setattr(Checkpointer, "write", lambda self, *a, **k: (calls.append(1), original(self, *a, **k))[1])
    teacher = tiny_bert(hidden=32, layers=2, heads=4, seed=0)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to=[], use_cpu=True, max_steps=1,
                             per_device_train_batch_size=8, disable_tqdm=True, **save)
    trainer = DistillationTrainer(model=teacher, args=args, train_dataset=ToyData(32, 0), eval_dataset=ToyData(16, 1),
                                  compute_metrics=_compute_metrics)
    config = tiny_oob_config()
    config["search"]["max_trials"] = 2
    trainer.autodistillation_config = config
    trainer.autodistillation(teacher, model_cls=AutoModelForSequenceClassification)
    assert len(calls) == writes


def test_trainer_autodistillation_follows_a_searched_depth_with_a_flash_template(tmp_path):
    teacher = tiny_bert(hidden=32, layers=2, heads=4, seed=0)
    trainer = _trainer(tmp_path, teacher)
    trainer.autodistillation_config = {
        "search": {"search_space": {"num_hidden_layers": [1, 2]}, "search_algorithm": "grid", "max_trials": 2,
                   "seed": 0},
        "flash_distillation": {"block_names": "bert.encoder.layer.{i}",
                               "layer_mappings_for_knowledge_transfer": [
                                   ["bert.encoder.layer.{i}.output", "bert.encoder.layer.{t}.output"]]},
        "regular_distillation": {},
    }
    trainer.autodistillation(teacher, model_cls="AutoModelForSequenceClassification")
    study = optuna.load_study(study_name="autodistillation", storage=f"sqlite:///{tmp_path / 'out' / 'study.db'}")
    assert sorted(t.params["num_hidden_layers"] for t in study.get_trials(states=(TrialState.COMPLETE,))) == [1, 2]
    assert [s.name for s in trainer.distillation_result.stages][:-1] in (
        ["flash[0]:bert.encoder.layer.0"], ["flash[0]:bert.encoder.layer.0", "flash[1]:bert.encoder.layer.1"])


def test_trainer_autodistillation_advanced_mode_runs_the_users_functions(tmp_path):
    teacher = tiny_bert(hidden=32, layers=2, heads=4, seed=0)
    trainer = _trainer(tmp_path, teacher)
    trainer.autodistillation_config = {"search": {"search_space": {"hidden_size": [8, 16]}, "max_trials": 2,
                                                  "search_algorithm": "grid", "seed": 0}}
    built, trained = [], []

    def model_builder(model_arch_paras):
        built.append(dict(model_arch_paras))
        return tiny_bert(hidden=model_arch_paras["hidden_size"], layers=1, heads=2)

    def train_func(model):
        trained.append(model.config.hidden_size)
        return model

    best = trainer.autodistillation(teacher, model_builder, train_func=train_func, eval_func=accuracy_only)
    assert sorted(trained) == [8, 16] and len(built) == 2
    assert best and all(isinstance(a, Architecture) for a in best)
    assert (tmp_path / "out" / "study.db").is_file()


def test_trainer_autodistillation_without_a_builder_or_model_cls_is_refused(tmp_path):
    teacher = tiny_bert(hidden=32, layers=2, heads=4, seed=0)
    trainer = _trainer(tmp_path, teacher)
    with pytest.raises(ConfigError, match="autodistillation_config is not set"):
        trainer.autodistillation(teacher, model_cls=AutoModelForSequenceClassification)
    trainer.autodistillation_config = tiny_oob_config()
    with pytest.raises(ConfigError, match="model_builder .* or model_cls"):
        trainer.autodistillation(teacher)


# -- seed 003's OOB MobileBERT search: students of the Trainer's model type, a BERT teacher ------
class MaskedText(torch.utils.data.Dataset):
    """Random token ids with 30% replaced by [MASK] (id 4), labels -100 elsewhere: masked-LM batches."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(5, VOCAB, (n, SEQ), generator=g)
        self.masked = torch.rand(n, SEQ, generator=g) < 0.3

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ids, masked = self.ids[i], self.masked[i]
        return {"input_ids": ids.masked_fill(masked, 4), "attention_mask": torch.ones_like(ids),
                "labels": ids.masked_fill(~masked, -100)}


def tiny_mobilebert(**sizes) -> MobileBertForPreTraining:
    """The Trainer's model in seed 003's masked-LM example, tiny: MobileBERT's 24 layers (the seed's
    24 blocks) with a small vocabulary, embeddings and positions; the search sets the widths."""
    torch.manual_seed(0)
    config = MobileBertConfig(**{"vocab_size": VOCAB, "num_hidden_layers": 24, "embedding_size": 8,
                                 "max_position_embeddings": 32, **sizes})
    return MobileBertForPreTraining._from_config(config, attn_implementation="eager")


def _quick_args(tmp_path, **kwargs) -> TrainingArguments:
    """One step per stage, no checkpoints, small batches."""
    return TrainingArguments(**{"output_dir": str(tmp_path / "out"), "report_to": [], "use_cpu": True,
                                "max_steps": 1, "save_strategy": "no", "per_device_train_batch_size": 2,
                                "per_device_eval_batch_size": 8, "disable_tqdm": True, **kwargs})


def _mlm_trainer(tmp_path, model) -> DistillationTrainer:
    return DistillationTrainer(model=model, args=_quick_args(tmp_path), train_dataset=MaskedText(4, 0),
                               eval_dataset=MaskedText(8, 1))


def test_seed003_oob_mobilebert_search_runs_as_written(tmp_path, caplog):
    """Seed 003's OOB call as written, `trainer.autodistillation(teacher_model,
    model_cls=AutoModelForPreTraining)`, its dict verbatim (MobileBERT search space, 24 flash
    blocks of attention-map KL and output MSE against `bert.encoder.layer.<i>`, the regular
    stage's `cls` KL with the origin loss) plus two budget keys for a test's time: students are
    MobileBERTs (the Trainer's model type) of a 24-layer BERT teacher, from random weights."""
    teacher = tiny_bert(hidden=16, layers=24, heads=2, cls=BertForPreTraining)
    trainer = _mlm_trainer(tmp_path, tiny_mobilebert())
    trainer.autodistillation_config = {**seed003_oob_config(),
                                       "evaluation": {"latency": {"sequence_length": SEQ, "warmup": 1}}}
    trainer.autodistillation_config["search"]["max_trials"] = 1
    with caplog.at_level("INFO", logger="autodistill.study.trainer_search"):
        best = trainer.autodistillation(teacher, model_cls=AutoModelForPreTraining)
    assert [r.getMessage() for r in caplog.records if "random weights" in r.getMessage()] == [
        "OOB students are mobilebert (the Trainer's model), the teacher is bert: students start from random "
        "weights (no weights are copied across model types)"]
    assert best and set(best[0]) == set(seed003_oob_config()["search"]["search_space"])
    (trial,) = optuna.load_study(study_name="autodistillation",
                                 storage=f"sqlite:///{tmp_path / 'out' / 'study.db'}").trials
    assert trial.state == TrialState.COMPLETE and trial.user_attrs["latency_p50_ms"] > 0
    assert 0 <= trial.user_attrs["accuracy"] <= 1 and trial.user_attrs["perplexity"] > 1  # masked-LM figures
    saved = AutoModelForPreTraining.from_pretrained(trial.user_attrs["student_path"])
    assert isinstance(saved, MobileBertForPreTraining) and saved.config.num_hidden_layers == 24
    assert {key: getattr(saved.config, key) for key in trial.params} == trial.params
    assert saved.config.true_hidden_size == trial.params["intra_bottleneck_size"]  # the attention's width
    stages = [s.name for s in trainer.distillation_result.stages]
    assert len(stages) == 25 and stages[-1] == "regular"


def test_seed003_space_keys_the_student_family_lacks_are_one_error_naming_the_key(tmp_path):
    """The Trainer holds the BERT teacher, so students are BERTs: MobileBERT's keys are refused
    before any trial, naming the first one and the fix."""
    teacher = tiny_bert(hidden=16, layers=2, heads=2, cls=BertForPreTraining)
    trainer = _mlm_trainer(tmp_path, teacher)
    trainer.autodistillation_config = seed003_oob_config()
    with pytest.raises(ConfigError, match=r"^search\.search_space\.intra_bottleneck_size: OOB students are "
                                          r"BertConfigs .* no key 'intra_bottleneck_size'.* model=MobileBert"):
        trainer.autodistillation(teacher, model_cls=AutoModelForPreTraining)
    assert not (tmp_path / "out" / "study.db").exists()


def test_mobilebert_students_follow_the_bottleneck_and_split_it_into_heads():
    """MobileBERT's heads split `intra_bottleneck_size` (its attention width `true_hidden_size`),
    so seed 003's hidden_size 246 builds with 4 heads; a bottleneck the heads do not divide does not."""
    base = tiny_mobilebert().config
    config = student_config(base, {"hidden_size": 246, "intra_bottleneck_size": 96, "num_attention_heads": 4})
    check_architecture(config)
    assert config.true_hidden_size == 96 and base.true_hidden_size == 128
    with pytest.raises(InvalidArchitecture, match="intra_bottleneck_size 96 is not divisible by num_attention_heads 5"):
        check_architecture(student_config(base, {"intra_bottleneck_size": 96, "num_attention_heads": 5}))
    flat = student_config(base, {"use_bottleneck": False, "hidden_size": 246, "num_attention_heads": 4})
    assert flat.true_hidden_size == 246
    with pytest.raises(InvalidArchitecture, match="hidden_size 246 is not divisible by num_attention_heads 4"):
        check_architecture(flat)


def test_init_from_teacher_leaves_a_student_of_another_model_type_random(caplog):
    teacher = tiny_bert(hidden=512, layers=2, heads=4, intermediate=1024, cls=BertForPreTraining)
    student = tiny_mobilebert(num_hidden_layers=2)
    before = {name: p.clone() for name, p in student.named_parameters()}
    with caplog.at_level("INFO", logger="autodistill.models.init_from_teacher"):
        report = init_from_teacher(student, teacher)
    assert report.copied == () and set(report.skipped) == set(before)
    assert all(torch.equal(before[name], p) for name, p in student.named_parameters())
    assert len(caplog.records) == 1 and "student is mobilebert, the teacher bert" in caplog.records[0].getMessage()


# -- the seeds' calls shown in README.md and docs/ (seeds, search), run as shown -----------------------
ROOT = Path(__file__).resolve().parents[1]
RUNNABLE = re.compile(r"<!-- runnable: ([^(>]+?) *(?:\([^)]*\))? *-->\n```python\n(.*?)```", re.S)


def runnable_blocks() -> list[tuple[str, str, str]]:
    """(file, name, code) of every Python block marked `<!-- runnable: NAME (a note) -->`."""
    return [(doc, name, code) for doc in ("README.md", "docs/seeds.md", "docs/search.md")
            for name, code in RUNNABLE.findall((ROOT / doc).read_text())]


def tiny_seed003_config() -> dict:
    """Seed 003's OOB dict in its own form, for 2-layer tiny models: its space's keys, smaller values."""
    return {
        'search': {
            'search_space': {'hidden_size': [32, 48], 'intra_bottleneck_size': [16, 32],
                             'num_attention_heads': [2, 4], 'intermediate_size': [32, 64],
                             'num_feedforward_networks': [1, 2]},
            'search_algorithm': 'random', 'max_trials': 2, 'seed': 0,
        },
        'flash_distillation': {
            'knowledge_transfer': {
                'block_names': ['mobilebert.encoder.layer.{}'.format(i) for i in range(2)],
                'layer_mappings_for_knowledge_transfer': [
                    [('mobilebert.encoder.layer.{}.attention.self'.format(i), '1',
                      'bert.encoder.layer.{}.attention.self'.format(i), '1'),
                     ('mobilebert.encoder.layer.{}.output'.format(i), 'bert.encoder.layer.{}.output'.format(i))]
                    for i in range(2)],
                'loss_types': [['KL', 'MSE'] for i in range(2)],
            },
            'regular_distillation': {
                'layer_mappings_for_knowledge_transfer': [[('cls', '0', 'cls', '0')]],
                'loss_types': [['KL']],
                'add_origin_loss': [True],
            },
        },
        'evaluation': {'latency': {'sequence_length': SEQ, 'warmup': 1}},
    }


def _names_seed003(tmp_path) -> dict:
    """The names seed 003's block uses: a 2-layer BERT teacher, a MobileBERT as the Trainer's model."""
    return {"teacher_model": tiny_bert(hidden=16, layers=2, heads=2, cls=BertForPreTraining),
            "student_model": tiny_mobilebert(num_hidden_layers=2), "autodistillation_config": tiny_seed003_config(),
            "model_builder": lambda arch: tiny_mobilebert(num_hidden_layers=2, **arch),
            "train_func": lambda model: model, "eval_func": accuracy_only,
            "args": _quick_args(tmp_path), "train_dataset": MaskedText(4, 0),
            "eval_dataset": MaskedText(8, 1)}


def _names_seeds_000_to_004(tmp_path) -> dict:
    """The names the other seeds' block uses: a tiny BERT pair, the Trainer's data, 4-tuple batches."""
    tuples = [(b["input_ids"], b["attention_mask"], torch.zeros_like(b["input_ids"]), b["labels"])
              for b in toy_batches(2)]
    return {"teacher": tiny_bert(hidden=32, layers=2, heads=4), "student": tiny_bert(hidden=16, layers=1, heads=2),
            "args": _quick_args(tmp_path, max_steps=2, per_device_train_batch_size=8),
            "train_dataset": ToyData(32, 0), "eval_dataset": ToyData(16, 1), "tuple_loader": tuples}


BLOCK_NAMES = {"seed 003": _names_seed003, "seeds 000-004": _names_seeds_000_to_004,
               "task protocol": lambda tmp_path: {}}  # self-contained


def test_every_runnable_block_of_the_docs_has_its_names():
    blocks = runnable_blocks()
    assert {(doc, name) for doc, name, _ in blocks} == {("README.md", "seed 003"), ("docs/seeds.md", "seeds 000-004"),
                                                       ("docs/search.md", "task protocol")}


@pytest.mark.parametrize(("doc", "name", "code"), [pytest.param(*block, id=f"{block[0]}:{block[1]}")
                                                    for block in runnable_blocks()])
def test_the_seeds_calls_shown_in_the_docs_run(doc, name, code, tmp_path, monkeypatch):
    """Each block marked runnable in README.md, docs/seeds.md and docs/search.md, executed as
    written with tiny models bound to the names it leaves free; what it assigns is what the
    calls return."""
    monkeypatch.chdir(tmp_path)  # AutoDistillation's default study: runs/autodistillation
    names = BLOCK_NAMES[name](tmp_path)
    exec(compile(code, f"{doc}:{name}", "exec"), names)
    if name == "seed 003":
        assert names["best_model_arch"] and all(isinstance(a, Architecture) for a in names["best_model_arch"])
        assert (tmp_path / "runs" / "autodistillation" / "study.db").is_file()
        assert (tmp_path / "out" / "study.db").is_file()
    elif name == "task protocol":
        assert names["best"] and all(isinstance(a, Architecture) for a in names["best"])
        assert {a["width"] for a in names["best"]} <= {2, 4, 8, 16}
        assert (tmp_path / "runs" / "mlp" / "study.db").is_file()
    else:
        assert names["model"] is names["student"] and names["result"].losses
        assert names["result"].evaluations, names["result"]


# -- the user's losses named in YAML -------------------------------------------------------------
USER_LOSSES = '''\
import torch.nn.functional as F

CALLS = []


def smooth_l1(student, teacher, context):
    CALLS.append(tuple(student.shape))
    return F.smooth_l1_loss(student, teacher)
'''


@pytest.fixture
def user_losses(tmp_path, monkeypatch):
    """A module of the user's own, importable as `my_losses`; its loss types unregistered after."""
    from autodistill.losses import LOSSES

    (tmp_path / "my_losses.py").write_text(USER_LOSSES)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("my_losses")
    for name in ("SmoothL1", "my_losses:smooth_l1"):
        LOSSES.unregister(name)
    sys.modules.pop("my_losses", None)


def test_a_configs_losses_are_imported_before_its_loss_types_are_checked(user_losses, tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("distillation:\n  losses: {SmoothL1: 'my_losses:smooth_l1'}\n  regular_distillation:\n"
                    "    layer_mappings: [[a, b], [c, d]]\n    loss_types: [SmoothL1, 'my_losses:smooth_l1']\n")
    first, second = load_distillation_plan(path).stages[0].mappings
    assert (first.loss, second.loss) == ("SmoothL1", "my_losses:smooth_l1")
    from autodistill.losses import LOSSES

    assert LOSSES.get("SmoothL1") is user_losses.smooth_l1 is LOSSES.get("my_losses:smooth_l1")
    load_distillation_plan(path)  # loading it again registers nothing twice


def test_a_loss_that_cannot_be_imported_or_shadows_a_builtin_names_its_key(user_losses, tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("distillation:\n  losses: {Mine: 'no_such_module:f'}\n  regular_distillation: {}\n")
    where = r"d\.yaml:2:3: distillation\.losses: Mine: cannot import module 'no_such_module'.*PYTHONPATH"
    with pytest.raises(ConfigError, match=where):
        load_distillation_plan(path)
    path.write_text("distillation:\n  losses: {MSE: 'my_losses:smooth_l1'}\n  regular_distillation: {}\n")
    with pytest.raises(ConfigError, match="distillation.losses: MSE: loss type 'MSE' is already registered"):
        load_distillation_plan(path)
    path.write_text("distillation:\n"
                    "  regular_distillation: {layer_mappings: [[a, b]], loss_types: ['my_losses:nope']}\n")
    where = "regular_distillation.loss_types: loss type .my_losses:nope.: module .my_losses. has no attribute"
    with pytest.raises(ConfigError, match=where):
        load_distillation_plan(path)


def test_the_cli_distils_with_a_loss_named_in_the_config(user_losses, workspace, tmp_path):
    from autodistill.cli import main

    out = tmp_path / "student"
    config = tmp_path / "distill.yaml"
    config.write_text(f"""
teacher: {{model: {workspace / 'teacher'}}}
student:
  overrides: {{hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32}}
data: {{train_file: {workspace / 'train.csv'}, validation_file: {workspace / 'dev.csv'},
       max_length: 12, batch_size: 16}}
distillation:
  progress: false
  losses: {{SmoothL1: 'my_losses:smooth_l1'}}
  regular_distillation:
    layer_mappings: [[bert.encoder.layer.0.output, bert.encoder.layer.1.output]]
    loss_types: [SmoothL1]
    add_origin_loss: true
    train_steps: 3
output_dir: {out}
""")
    assert main(["distill", str(config), "--quiet"]) == 0
    assert len(user_losses.CALLS) >= 3 and user_losses.CALLS[0][-1] == 32  # matched to the teacher's width


def test_the_cli_reports_a_loss_it_cannot_import_in_one_line(user_losses, workspace, tmp_path, capsys):
    from autodistill.cli import main

    config = tmp_path / "distill.yaml"
    config.write_text(f"""
teacher: {{model: {workspace / 'teacher'}}}
student: {{overrides: {{hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2}}}}
data: {{train_file: {workspace / 'train.csv'}, validation_file: {workspace / 'dev.csv'}}}
distillation:
  losses: {{Mine: 'my_losses:missing'}}
  regular_distillation: {{layer_mappings: [[bert.encoder.layer.0.output, bert.encoder.layer.1.output]],
                          loss_types: [Mine]}}
output_dir: {tmp_path / 'out'}
""")
    assert main(["distill", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("autodistill: error: ")
    assert "distillation.losses: Mine: module 'my_losses' has no attribute 'missing'" in err[0]
    assert not (tmp_path / "out").exists()
