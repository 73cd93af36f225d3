"""Sandwich training: the masked update, the supernet store's reuse and resume, its bad inputs."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from conftest import tiny_bert, toy_batches
from torch.utils.data import Dataset

from autodistill.config.supernet import SupernetSection
from autodistill.data import make_loader
from autodistill.errors import ConfigError
from autodistill.space import SearchSpace
from autodistill.supernet import SupernetStore, elastic_for, load_or_train_supernet, train_supernet
from autodistill.supernet import loading as loading_module
from autodistill.supernet.sandwich import corners, sandwich

SPACE = SearchSpace.from_mapping({"hidden_size": [8, 16, 32], "num_hidden_layers": {"low": 1, "high": 4},
                                  "num_attention_heads": [2, 4], "intermediate_size": [16, 64]})


class _Examples(Dataset):
    """The toy batches as single examples, so a seeded loader shuffles them each epoch."""

    def __init__(self, n_batches: int = 3) -> None:
        batches = toy_batches(n_batches, batch_size=8, seed=4)
        self.items = [{k: v[i] for k, v in b.items()} for b in batches for i in range(8)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.items[index]


def _teacher(dropout: float = 0.0):
    teacher = tiny_bert(hidden=32, layers=4, heads=4, seed=2)
    teacher.config.hidden_dropout_prob = dropout  # the supernet is built from this config
    return teacher.eval()


def _section(**values) -> SupernetSection:
    defaults = {"train_steps": 6, "random_subnets": 1, "checkpoint_every_steps": 2, "importance_batches": 2,
                "optimizer": {"name": "AdamW", "learning_rate": 1e-3, "weight_decay": 0.1}, "temperature": 2.0}
    return SupernetSection.model_validate({**defaults, **values})


def test_a_sandwich_step_changes_only_the_entries_its_subnetworks_use(tmp_path):
    teacher = _teacher()
    narrow = SearchSpace.from_mapping({"hidden_size": [8, 16], "num_hidden_layers": [1, 2],
                                       "num_attention_heads": [2], "intermediate_size": [8, 16]})
    elastic = elastic_for(copy.deepcopy(teacher))  # wider than the space: the largest uses part of it
    before = {n: p.detach().clone() for n, p in elastic.model.named_parameters()}
    section = _section(train_steps=1)
    train_supernet(elastic, teacher=teacher, loader=toy_batches(2), space=narrow, section=section,
                   store=SupernetStore(tmp_path, "k"), quiet=True)
    grid = narrow.grid()
    config, layout = elastic.model.config, elastic.layout
    subnets = sandwich(grid, config, layout, seed=section.seed, step=1, random_subnets=section.random_subnets,
                       ends=corners(grid, config, layout))
    used = {}
    for _, architecture in subnets:
        for name, slices in elastic.parameter_slices(architecture).items():
            used.setdefault(name, torch.zeros_like(before[name], dtype=torch.bool))[slices] = True
    moved_inside = 0
    for name, param in elastic.model.named_parameters():
        mask = used.get(name, torch.zeros_like(param, dtype=torch.bool))
        assert torch.equal(param[~mask], before[name][~mask]), f"{name} moved outside its sub-networks"
        moved_inside += int((param[mask] != before[name][mask]).sum())
    assert moved_inside > 1000
    assert "bert.encoder.layer.0.attention.self.query.weight" not in used  # depth 1..2 of 4: layers 1, 3


def _weights(elastic) -> dict[str, torch.Tensor]:
    return {n: t.detach().clone() for n, t in elastic.model.state_dict().items()}


def _train(root, teacher, section, **kwargs):
    return load_or_train_supernet(teacher, loader=make_loader(_Examples(), batch_size=8, shuffle=True, seed=0),
                                  space=SPACE, section=section, root=root, key="abc",
                                  importance_batches=toy_batches(2, seed=7), quiet=True, **kwargs)


class _Stop(Exception):
    pass


def test_a_stopped_run_resumes_at_its_checkpoint_and_ends_with_the_uninterrupted_weights(tmp_path):
    teacher, section = _teacher(dropout=0.1), _section()  # dropout: the RNG state must resume too
    whole = _weights(_train(tmp_path / "whole", teacher, section))

    def stop_at_3(step: int) -> None:
        if step == 3:
            raise _Stop

    with pytest.raises(_Stop):
        _train(tmp_path / "cut", teacher, section, on_step=stop_at_3)
    store = SupernetStore(tmp_path / "cut", "abc")
    assert not store.finished() and store.latest_checkpoint()["step"] == 2
    steps = []
    resumed = _weights(_train(tmp_path / "cut", teacher, section, on_step=steps.append))
    assert steps == [3, 4, 5, 6]
    assert resumed.keys() == whole.keys()
    for name in whole:
        assert torch.equal(resumed[name], whole[name]), name
    assert store.finished() and not store.has_checkpoint()


def test_a_second_call_reuses_the_finished_supernet(tmp_path, monkeypatch):
    teacher, section = _teacher(), _section(train_steps=2)
    first = _train(tmp_path, teacher, section)
    assert first.model.config.hidden_size == 32 and first.model.config.num_hidden_layers == 4

    def no_training(*args, **kwargs):
        raise AssertionError("the finished supernet was trained again")

    monkeypatch.setattr(loading_module, "train_supernet", no_training)
    monkeypatch.setattr(loading_module, "reorder_by_importance", no_training)
    second = _train(tmp_path, teacher, section)
    record = json.loads(next(tmp_path.glob("*/final/supernet.json")).read_text())
    assert record["steps"] == 2 and record["cpu_seconds"] > 0  # what bench_supernet compare charges
    for name, tensor in _weights(first).items():
        assert torch.equal(_weights(second)[name], tensor), name
    architecture = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 16}
    batch = toy_batches(1)[0]
    with torch.no_grad():
        torch.testing.assert_close(second.extract(architecture)(input_ids=batch["input_ids"]).logits,
                                   first.forward(architecture, input_ids=batch["input_ids"]), atol=1e-5, rtol=0)


def test_the_supernet_is_cut_to_the_spaces_widths_keeps_the_teachers_layers_and_leaves_it_untouched(tmp_path):
    teacher, section = _teacher(), _section(train_steps=1)
    original = {n: p.detach().clone() for n, p in teacher.named_parameters()}
    small = SearchSpace.from_mapping({"hidden_size": [8, 16], "num_hidden_layers": [1, 2]})
    elastic = load_or_train_supernet(teacher, loader=toy_batches(2), space=small, section=section, root=tmp_path,
                                     key="small", importance_batches=toy_batches(1), quiet=True)
    assert (elastic.model.config.hidden_size, elastic.model.config.num_hidden_layers) == (16, 4)
    # depth 2 takes teacher layers 1 and 3, as init_from_teacher and the flash templates do
    assert "bert.encoder.layer.1.output.dense.weight" in elastic.parameter_slices({"num_hidden_layers": 2})
    assert "bert.encoder.layer.0.output.dense.weight" not in elastic.parameter_slices({"num_hidden_layers": 2})
    assert all(torch.equal(p, original[n]) for n, p in teacher.named_parameters())


def test_a_checkpoint_of_another_supernet_is_refused(tmp_path):
    SupernetStore(tmp_path, "other").save_checkpoint({"step": 1})
    (tmp_path / "mine").mkdir()
    (tmp_path / "other" / "checkpoint.pt").rename(tmp_path / "mine" / "checkpoint.pt")
    with pytest.raises(ConfigError, match=r"written for supernet 'other', not 'mine'.*delete it"):
        SupernetStore(tmp_path, "mine").latest_checkpoint()


def test_a_space_wider_than_the_teacher_fails_before_anything_is_written(tmp_path):
    wide = SearchSpace.from_mapping({"hidden_size": [16, 64]})
    with pytest.raises(ConfigError, match="hidden_size: 64 is larger"):
        load_or_train_supernet(_teacher(), loader=toy_batches(1), space=wide, section=_section(), root=tmp_path,
                               key="k", importance_batches=toy_batches(1), quiet=True)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("values, message", [
    ({"final_trials": 0}, "final_trials"),
    ({"proxy_fine_tune_steps": -1}, "proxy_fine_tune_steps"),
    ({"random_subnets": -1}, "random_subnets"),
    ({"train_steps": 3, "epochs": 1.0}, "not both"),
    ({"optimizer": {"name": "SGD"}}, "masked AdamW"),
    ({"loss_weights": [0, 0]}, "must not both be 0"),
    ({"temperature": float("inf")}, "temperature"),
])
def test_supernet_section_rejects_bad_values(values, message):
    with pytest.raises(ValueError, match=message):
        SupernetSection.model_validate(values)


def test_masked_adamw_is_adamw_on_the_entries_it_moves():
    from autodistill.config.plan import OptimizerSpec
    from autodistill.supernet import MaskedAdamW

    torch.manual_seed(0)
    masked, plain = torch.nn.Linear(5, 4), torch.nn.Linear(5, 4)
    plain.load_state_dict(masked.state_dict())
    optimizer = MaskedAdamW(list(masked.named_parameters()), OptimizerSpec(learning_rate=1e-2, weight_decay=0.1))
    reference = torch.optim.AdamW([{"params": [plain.weight], "weight_decay": 0.1},
                                   {"params": [plain.bias], "weight_decay": 0.0}], lr=1e-2)
    rows = torch.zeros(4, 5, dtype=torch.bool)
    rows[:2] = True
    for step in range(4):
        x = torch.randn(3, 5)
        for model in (masked, plain):
            model.zero_grad()
            model(x).pow(2).sum().backward()
        frozen = masked.weight[2:].detach().clone()
        partial = step == 3  # the last step moves the first two rows only
        optimizer.step({masked.weight: rows if partial else torch.ones_like(rows),
                        masked.bias: torch.ones(4, dtype=torch.bool)})
        if not partial:
            reference.step()
            torch.testing.assert_close(masked.weight, plain.weight, atol=1e-6, rtol=0)
    assert torch.equal(masked.weight[2:], frozen)
    assert torch.equal(optimizer.state[masked.weight]["step"][2:], torch.full((2, 5), 3.0))


def test_the_key_settings_leave_out_the_search_budgets():
    base = _section()
    assert base.key_settings() == _section(proxy_trials=7, final_trials=2, checkpoint_every_steps=9).key_settings()
    assert base.key_settings() != _section(random_subnets=3).key_settings()


def test_sandwich_training_teaches_every_subnetwork_not_only_the_largest(tmp_path):
    """On the toy task (task loss only: the tiny teacher is untrained), the smallest, the largest and
    a middle sub-network all reach >= 0.9 held-out accuracy; before training none is above 0.75."""
    teacher = _teacher()
    elastic = elastic_for(copy.deepcopy(teacher))
    architectures = [{"hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16},
                     {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 16},
                     {"hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 64}]
    held_out = toy_batches(4, seed=99)

    def accuracy(architecture) -> float:
        with torch.no_grad():
            return sum((elastic.forward(architecture, input_ids=b["input_ids"], attention_mask=b["attention_mask"])
                        .argmax(-1) == b["labels"]).float().mean().item() for b in held_out) / len(held_out)

    assert max(accuracy(a) for a in architectures) < 0.75
    section = _section(train_steps=120, loss_weights=[0, 1], optimizer={"name": "AdamW", "learning_rate": 3e-3})
    train_supernet(elastic, teacher=teacher, loader=make_loader(_Examples(40), batch_size=16, shuffle=True, seed=0),
                   space=SPACE, section=section, store=SupernetStore(tmp_path, "k"), quiet=True)
    trained = [accuracy(a) for a in architectures]
    assert min(trained) >= 0.9, trained


def test_a_distilbert_supernet_trains_and_extracts(tmp_path):
    from test_supernet_elastic import tiny_distilbert

    teacher = tiny_distilbert()
    space = SearchSpace.from_mapping({"dim": [16, 32], "n_layers": [1, 3], "n_heads": [2, 4]})
    elastic = load_or_train_supernet(teacher, loader=toy_batches(2), space=space, section=_section(train_steps=2),
                                     root=tmp_path, key="d", importance_batches=toy_batches(1), quiet=True)
    student = elastic.extract({"dim": 16, "n_layers": 1, "n_heads": 2})
    assert (student.config.dim, student.config.n_layers) == (16, 1)
    assert SupernetStore(tmp_path, "d").finished()


def test_the_log_holds_the_loss_per_subnetwork_size(tmp_path, caplog):
    teacher = _teacher()
    with caplog.at_level("INFO", logger="autodistill.supernet.training"):
        report = train_supernet(elastic_for(copy.deepcopy(teacher)), teacher=teacher, loader=toy_batches(2),
                                space=SPACE, section=_section(train_steps=4), store=SupernetStore(tmp_path, "k"),
                                quiet=True)
    lines = [r.getMessage() for r in caplog.records if "supernet step" in r.getMessage()]
    assert len(lines) == 4 and all(("largest" in m and "smallest" in m and "random" in m) for m in lines)
    assert set(report.last_losses()) == {"largest", "smallest", "random"}


def test_workers_that_start_together_train_the_supernet_once(tmp_path, monkeypatch):
    import threading
    import time

    teacher, section = _teacher(), _section(train_steps=2)
    trainings, second_started, results = [], threading.Event(), {}
    real = loading_module.train_supernet

    def counted(*args, **kwargs):
        trainings.append(threading.current_thread().name)
        return real(*args, **kwargs)

    def hold_until_the_second_waits(step: int) -> None:
        if step == 1:
            second_started.wait(10)
            time.sleep(0.3)  # let it reach the lock while this one trains

    monkeypatch.setattr(loading_module, "train_supernet", counted)

    def worker(name: str, on_step=None) -> None:
        if name == "second":
            second_started.set()
        results[name] = _weights(_train(tmp_path, teacher, section, on_step=on_step))

    first = threading.Thread(target=worker, args=("first", hold_until_the_second_waits), name="first")
    first.start()
    while not trainings:
        time.sleep(0.01)
    second = threading.Thread(target=worker, args=("second",), name="second")
    second.start()
    first.join(60)
    second.join(60)
    assert trainings == ["first"]
    assert results["first"].keys() == results["second"].keys()
    assert all(torch.equal(results["first"][k], results["second"][k]) for k in results["first"])


def test_a_non_finite_loss_stops_training_before_the_weights_move(tmp_path):
    from autodistill.errors import NonFiniteLossError

    teacher = _teacher()
    elastic = elastic_for(copy.deepcopy(teacher))
    with torch.no_grad():
        elastic.model.classifier.bias.fill_(float("inf"))
    before = _weights(elastic)
    with pytest.raises(NonFiniteLossError, match=r"stage 'supernet \(sandwich\)' at step 1.*lower the learning rate"):
        train_supernet(elastic, teacher=teacher, loader=toy_batches(1), space=SPACE, section=_section(),
                       store=SupernetStore(tmp_path, "k"), quiet=True)
    after = _weights(elastic)
    assert all(torch.equal(after[k], before[k]) for k in before)


def test_a_continuous_dimension_is_named_before_anything_is_written(tmp_path):
    space = SearchSpace.from_mapping({"hidden_size": [16, 32], "hidden_dropout_prob": {"low": 0.0, "high": 0.3}})
    with pytest.raises(ConfigError, match=r"search\.search_space\.hidden_dropout_prob: .*continuous range"):
        load_or_train_supernet(_teacher(), loader=toy_batches(1), space=space, section=_section(), root=tmp_path,
                               key="k", importance_batches=toy_batches(1), quiet=True)
    assert not any(tmp_path.iterdir())
