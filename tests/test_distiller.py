"""The distillation engine end to end on tiny real BERTs, including every mistake of the
system this project descends from (DESIGN.md section 3)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from conftest import tiny_bert, toy_batches

from autodistill import (
    CaptureError,
    ConfigError,
    DistillationCallback,
    Distiller,
    FeatureMatchers,
    MappingError,
    NonFiniteLossError,
    load_distillation_plan,
)
from autodistill.distill.callbacks import CallbackList, DistillationControl, DistillationState, handles
from autodistill.distill.freezing import select_parameters

REPO = Path(__file__).resolve().parents[1]


def flash_config(steps=(3, 3), regular=4, lr=1e-2, **extra):
    return {
        "seed": 7, "progress": False,
        "optimizer": {"name": "AdamW", "learning_rate": lr},
        "flash_distillation": {
            "block_names": ["bert.encoder.layer.0", "bert.encoder.layer.1"],
            "layer_mappings_for_knowledge_transfer": [
                [["bert.encoder.layer.0.attention.self", "1", "bert.encoder.layer.1.attention.self", "1"],
                 ["bert.encoder.layer.0.output", "bert.encoder.layer.1.output"]],
                [["bert.encoder.layer.1.output", "bert.encoder.layer.3.output"]],
            ],
            "loss_types": [["KL", "MSE"], ["MSE"]],
            "loss_weights": [[0.5, 0.5], [1.0]],
            "train_steps": list(steps),
        },
        "regular_distillation": {"train_steps": regular, "loss_types": ["KL", "CE"],
                                 "loss_weights": [0.5, 0.5], "temperature": 2.0},
        **extra,
    }


class Snapshots(DistillationCallback):
    """Copies of the student's parameters at the start and end of every stage."""

    def __init__(self, model):
        self.model, self.at = model, {}

    def _take(self):
        return {n: p.detach().clone() for n, p in self.model.named_parameters()}

    def on_stage_begin(self, state, control):
        self.at[(state.stage.name, "begin")] = self._take()

    def on_stage_end(self, state, control):
        self.at[(state.stage.name, "end")] = self._take()


def changed(before, after, prefix):
    names = [n for n in before if n == prefix or n.startswith(prefix + ".")]
    assert names, prefix
    return any(not torch.equal(before[n], after[n]) for n in names)


def test_each_block_trains_during_its_own_steps_and_no_other(teacher, student):
    snaps = Snapshots(student)
    Distiller(teacher, student, flash_config(), callbacks=[snaps]).fit(toy_batches())
    b0, e0 = snaps.at[("flash[0]:bert.encoder.layer.0", "begin")], snaps.at[("flash[0]:bert.encoder.layer.0", "end")]
    b1, e1 = snaps.at[("flash[1]:bert.encoder.layer.1", "begin")], snaps.at[("flash[1]:bert.encoder.layer.1", "end")]
    br, er = snaps.at[("regular", "begin")], snaps.at[("regular", "end")]
    assert changed(b0, e0, "bert.encoder.layer.0")
    assert not changed(b0, e0, "bert.encoder.layer.1")
    assert not changed(b0, e0, "bert.embeddings") and not changed(b0, e0, "classifier")
    assert changed(b1, e1, "bert.encoder.layer.1")
    assert not changed(b1, e1, "bert.encoder.layer.0")
    # the regular stage trains the whole student (its own optimiser, not block 0's)
    for prefix in ("bert.embeddings", "bert.encoder.layer.0", "bert.encoder.layer.1", "classifier"):
        assert changed(br, er, prefix), prefix
    # freezing is undone afterwards
    assert all(p.requires_grad for p in student.parameters())


def test_freezing_uses_exact_prefixes_not_substrings():
    model = tiny_bert(hidden=8, layers=12, heads=2)
    names = [n for n, _ in select_parameters(model, ["bert.encoder.layer.1"])]
    assert names and all(n.startswith("bert.encoder.layer.1.") for n in names)
    snaps = Snapshots(model)
    config = {"progress": False, "optimizer": {"learning_rate": 1e-2},
              "flash_distillation": {"block_names": ["bert.encoder.layer.1"],
                                     "layer_mappings_for_knowledge_transfer": [
                                         [["bert.encoder.layer.1.output", "bert.encoder.layer.1.output"]]],
                                     "train_steps": [2]}}
    Distiller(tiny_bert(hidden=8, layers=12, heads=2, seed=3), model, config, callbacks=[snaps]).fit(toy_batches(2))
    stage = "flash[0]:bert.encoder.layer.1"
    begin, end = snaps.at[(stage, "begin")], snaps.at[(stage, "end")]
    assert changed(begin, end, "bert.encoder.layer.1")
    for i in (10, 11):
        assert not changed(begin, end, f"bert.encoder.layer.{i}")


def test_matchers_are_created_trained_and_saved(teacher, student, tmp_path):
    distiller = Distiller(teacher, student, flash_config())
    distiller.prepare(toy_batches(1)[0])
    linear = [k for k, s in distiller.matchers.specs.items() if s.kind == "linear"]
    assert len(linear) == 2
    proj = distiller.matchers[linear[0]].proj
    assert tuple(proj.weight.shape) == (32, 16)  # student hidden 16 -> teacher hidden 32
    before = proj.weight.detach().clone()

    grads = []
    proj.weight.register_hook(lambda g: grads.append(g.abs().sum().item()))
    distiller = Distiller(teacher, student, flash_config(), matchers=distiller.matchers)
    distiller.fit(toy_batches())
    assert grads and max(grads) > 0
    assert not torch.equal(before, proj.weight.detach())

    distiller.save(tmp_path)
    reloaded = FeatureMatchers.load(tmp_path)
    assert reloaded.specs == distiller.matchers.specs
    for (n1, p1), (n2, p2) in zip(reloaded.named_parameters(), distiller.matchers.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2.cpu())
    assert (tmp_path / "config.json").exists()  # the student itself, via save_pretrained


def test_attention_maps_with_other_head_counts_are_compared_head_averaged(teacher, student):
    distiller = Distiller(teacher, student, flash_config())
    resolved = distiller.prepare(toy_batches(1)[0])
    attention = resolved[0][0]
    assert attention.teacher_is_probs and attention.student_is_probs
    assert distiller.matchers.specs[attention.matcher_key].kind == "head_mean"


def _trained_teacher():
    teacher = tiny_bert(hidden=32, layers=4, heads=4, seed=0)
    optimizer = torch.optim.AdamW(teacher.parameters(), lr=3e-3)
    for batch in toy_batches(40, 16, seed=11):
        loss = teacher(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return teacher.eval()


def _accuracy(model, batches):
    model.eval()
    with torch.no_grad():
        hits = sum((model(**{k: v for k, v in b.items() if k != "labels"}).logits.argmax(-1) == b["labels"])
                   .sum().item()
                   for b in batches)
    return hits / sum(len(b["labels"]) for b in batches)


def test_flash_then_regular_lowers_the_loss_and_the_student_beats_chance():
    teacher = _trained_teacher()
    held_out = toy_batches(8, 32, seed=99)
    assert _accuracy(teacher, held_out) > 0.9
    student = tiny_bert(hidden=16, layers=2, heads=2, seed=1)
    config = flash_config(steps=(30, 30), regular=120, lr=3e-3)
    result = Distiller(teacher, student, config).fit(toy_batches(16, 16, seed=5))
    for record in result.stages:
        first, last = record.losses[:5], record.losses[-5:]
        assert sum(last) / 5 < sum(first) / 5, record.name
    # chance is 0.5 on this balanced task; require a clear margin
    assert _accuracy(student, held_out) >= 0.8


def test_same_seed_gives_identical_losses(teacher):
    runs = []
    for _ in range(2):
        student = tiny_bert(hidden=16, layers=2, heads=2, seed=1)
        runs.append(Distiller(copy.deepcopy(teacher), student, flash_config()).fit(toy_batches()).losses)
    assert runs[0] == runs[1]


def test_gradient_accumulation_matches_one_big_batch(teacher):
    config = {"progress": False, "optimizer": {"name": "SGD", "learning_rate": 0.5},
              "regular_distillation": {"train_steps": 1, "loss_types": ["KL", "CE"], "temperature": 2.0}}
    big = toy_batches(1, 16, padded=False)
    halves = [{k: v[:8] for k, v in big[0].items()}, {k: v[8:] for k, v in big[0].items()}]
    one = tiny_bert(hidden=16, layers=2, heads=2, seed=1)
    two = copy.deepcopy(one)
    Distiller(teacher, one, config).fit(big)
    Distiller(teacher, two, {**config, "gradient_accumulation_steps": 2}).fit(halves)
    for p1, p2 in zip(one.parameters(), two.parameters()):
        assert torch.allclose(p1, p2, atol=1e-6)


def test_gradient_clipping_bounds_the_update(teacher):
    student = tiny_bert(hidden=16, layers=2, heads=2, seed=1)
    before = torch.cat([p.detach().flatten().clone() for p in student.parameters()])
    config = {"progress": False, "optimizer": {"name": "SGD", "learning_rate": 1.0},
              "max_grad_norm": 1e-3, "regular_distillation": {"train_steps": 1}}
    Distiller(teacher, student, config).fit(toy_batches(1))
    after = torch.cat([p.detach().flatten() for p in student.parameters()])
    assert 0 < (after - before).norm().item() <= 1e-3 + 1e-7


class Recorder(DistillationCallback):
    def __init__(self):
        self.events, self.lrs, self.terms = [], [], []

    def on_fit_begin(self, state, control):
        self.events.append("fit_begin")

    def on_stage_begin(self, state, control):
        self.events.append(f"stage_begin:{state.stage.name}")

    def on_step_end(self, state, control):
        self.events.append("step")
        self.lrs.append(state.learning_rate)
        self.terms.append(dict(state.terms))

    def on_stage_end(self, state, control):
        self.events.append(f"stage_end:{state.stage.name}")

    def on_fit_end(self, state, control):
        self.events.append("fit_end")


def test_callback_events_come_in_order(teacher, student):
    rec = Recorder()
    Distiller(teacher, student, flash_config(steps=(1, 2), regular=1), callbacks=[rec]).fit(toy_batches())
    assert rec.events == [
        "fit_begin",
        "stage_begin:flash[0]:bert.encoder.layer.0", "step", "stage_end:flash[0]:bert.encoder.layer.0",
        "stage_begin:flash[1]:bert.encoder.layer.1", "step", "step", "stage_end:flash[1]:bert.encoder.layer.1",
        "stage_begin:regular", "step", "stage_end:regular", "fit_end",
    ]


def test_an_event_goes_only_to_the_callbacks_that_handle_it():
    calls = []

    class Steps(DistillationCallback):
        def on_step_end(self, state, control):
            calls.append("steps")

    class Duck:  # not a DistillationCallback: any object with the event's method
        def on_stage_end(self, state, control):
            calls.append("duck")

    callbacks = CallbackList([Steps(), DistillationCallback(), Duck()])
    assert [handles(c, "on_step_end") for c in callbacks.callbacks] == [True, False, False]
    assert [handles(c, "on_stage_end") for c in callbacks.callbacks] == [False, False, True]
    for event in ("on_fit_begin", "on_step_end", "on_stage_end", "on_fit_end"):
        callbacks.fire(event, DistillationState(), DistillationControl())
    assert calls == ["steps", "duck"]


def test_a_callback_can_stop_the_run(teacher, student):
    class StopAfterTwo(DistillationCallback):
        def on_step_end(self, state, control):
            control.should_stop = state.global_step >= 2

    result = Distiller(teacher, student, flash_config(), callbacks=[StopAfterTwo()]).fit(toy_batches())
    assert result.stopped_early and len(result.losses) == 2


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_schedules_warm_up_then_decay(teacher, student, name):
    rec = Recorder()
    config = {"progress": False, "optimizer": {"learning_rate": 1e-3},
              "schedule": {"name": name, "warmup_steps": 3},
              "regular_distillation": {"train_steps": 10}}
    Distiller(teacher, student, config, callbacks=[rec]).fit(toy_batches())
    lrs = rec.lrs  # learning rate after each step's scheduler update
    assert lrs[0] < lrs[1] < lrs[2] and max(lrs) == pytest.approx(1e-3)
    assert lrs[-1] < 0.2e-3 and all(a >= b for a, b in zip(lrs[3:], lrs[4:]))


def test_constant_schedule_keeps_the_learning_rate(teacher, student):
    rec = Recorder()
    config = {"progress": False, "optimizer": {"name": "Adam", "learning_rate": 1e-3},
              "regular_distillation": {"train_steps": 4}}
    Distiller(teacher, student, config, callbacks=[rec]).fit(toy_batches())
    assert rec.lrs == [pytest.approx(1e-3)] * 4


def test_several_teachers_are_weighted(student):
    from autodistill.losses import LOSSES, LossContext

    t1, t2 = tiny_bert(hidden=32, layers=2, seed=4).eval(), tiny_bert(hidden=24, layers=3, heads=2, seed=5).eval()
    batch = toy_batches(1, padded=False)[0]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        s, l1, l2 = student.eval()(**inputs).logits, t1(**inputs).logits, t2(**inputs).logits
    kl = LOSSES.get("KL")
    expected = 0.25 * kl(s, l1, LossContext(temperature=2.0)) + 0.75 * kl(s, l2, LossContext(temperature=2.0))
    rec = Recorder()
    config = {"progress": False, "teacher_weights": [0.25, 0.75], "optimizer": {"learning_rate": 1e-3},
              "regular_distillation": {"train_steps": 1, "loss_types": ["KL", "CE"], "temperature": 2.0}}
    Distiller({"a": t1, "b": t2}, student, config, callbacks=[rec]).fit([batch])
    assert rec.terms[0]["kd"] == pytest.approx(expected.item(), rel=1e-4)


def test_a_nan_loss_stops_with_stage_and_step(teacher, student):
    from autodistill.losses import LOSSES

    LOSSES.register("nan_after_probe", lambda s, t, ctx: (s - t.mean()).sum() * float("nan"))
    try:
        config = flash_config()
        config["flash_distillation"]["loss_types"] = [["KL", "MSE"], ["nan_after_probe"]]
        with pytest.raises(NonFiniteLossError) as err:
            Distiller(teacher, student, config).fit(toy_batches())
    finally:
        LOSSES.unregister("nan_after_probe")
    assert err.value.stage == "flash[1]:bert.encoder.layer.1" and err.value.step == 0
    assert "flash[1]" in str(err.value) and "step 0" in str(err.value)


class CountSteps(DistillationCallback):
    def __init__(self):
        self.steps = 0

    def on_step_end(self, state, control):
        self.steps += 1


@pytest.mark.parametrize("mutate, error, words", [
    (lambda c: c["flash_distillation"]["layer_mappings_for_knowledge_transfer"][1][0]
     .__setitem__(0, "bert.encoder.layer.1.outptu"),
     CaptureError, "bert.encoder.layer.1.output"),
    (lambda c: c["flash_distillation"]["layer_mappings_for_knowledge_transfer"][0][0].__setitem__(3, "7"),
     CaptureError, "length 2"),
    (lambda c: c["flash_distillation"]["layer_mappings_for_knowledge_transfer"][1][0].__setitem__(1, "bert.pooler"),
     MappingError, "no matcher can bridge"),
    (lambda c: c["flash_distillation"]["block_names"].__setitem__(1, "bert.encoder.layer.9"),
     CaptureError, "bert.encoder.layer.9"),
])
def test_bad_mappings_fail_before_any_training_step(teacher, student, mutate, error, words):
    config = flash_config()
    mutate(config)
    counter = CountSteps()
    before = {n: p.detach().clone() for n, p in student.named_parameters()}
    with pytest.raises(error, match=words.replace(".", r"\.")):
        Distiller(teacher, student, config, callbacks=[counter]).fit(toy_batches())
    assert counter.steps == 0
    assert all(torch.equal(before[n], p) for n, p in student.named_parameters())


@pytest.mark.parametrize("mutate, words", [
    (lambda c: c["flash_distillation"].__setitem__("loss_types", [["KL", "Huber"], ["MSE"]]), "Huber.*allowed"),
    (lambda c: c["flash_distillation"].__setitem__("loss_weights", [[0.5], [1.0]]), "loss_weights"),
    (lambda c: c["flash_distillation"].__setitem__("train_steps", [3]),
     "train_steps has 1 entries but block_names has 2"),
    (lambda c: c["regular_distillation"].__setitem__("loss_weights", [1.0]), "loss_weights.*2 entries"),
    (lambda c: c.__setitem__("optimizer", {"name": "Adagrad"}), "optimizer 'Adagrad'.*allowed: SGD, Adam, AdamW"),
])
def test_bad_config_is_one_clear_error(teacher, student, mutate, words):
    config = flash_config()
    mutate(config)
    with pytest.raises(ConfigError, match=words):
        Distiller(teacher, student, config)


def test_labels_missing_for_origin_loss_is_an_error(teacher, student):
    config = {"progress": False, "regular_distillation": {"train_steps": 2, "loss_weights": [0.5, 0.5]}}
    batches = [{k: v for k, v in b.items() if k != "labels"} for b in toy_batches(2)]
    with pytest.raises(MappingError, match="needs labels"):
        Distiller(teacher, student, config).fit(batches)


def test_seed_001_example_runs_with_small_hidden_sizes():
    from transformers import BertModel

    plan = load_distillation_plan(REPO / "configs/examples/seed001_bert12_to_3.yaml")
    assert len(plan.stages[0].mappings) == 7
    plan = type(plan)(stages=(type(plan.stages[0])(**{**plan.stages[0].__dict__, "train_steps": 6}),),
                      seed=plan.seed, progress=False)
    teacher = tiny_bert(cls=BertModel, layers=12, hidden=24, heads=4, seed=0, dropout=None).eval()
    student = tiny_bert(cls=BertModel, layers=3, hidden=16, heads=2, seed=1, dropout=None)
    batches = [{k: v for k, v in b.items() if k != "labels"} for b in toy_batches(3)]
    distiller = Distiller(teacher, student, plan)
    result = distiller.fit(batches)
    assert len(result.losses) == 6
    assert {s.kind for s in distiller.matchers.specs.values()} == {"linear", "head_mean"}


def test_plain_cnns_distil_with_a_1x1_convolution_matcher():
    from test_capture import SmallCNN

    torch.manual_seed(0)
    teacher, student = SmallCNN(width=16).eval(), SmallCNN(width=8)
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 3, 8, 8, generator=g), torch.randint(0, 10, (8,), generator=g)) for _ in range(3)]
    config = {"progress": False, "optimizer": {"learning_rate": 1e-2},
              "flash_distillation": {"block_names": ["features.2"],
                                     "layer_mappings_for_knowledge_transfer": [[["features.3", "features.3"]]],
                                     "train_steps": [3]},
              "regular_distillation": {"train_steps": 3, "loss_types": ["KL", "CE"], "temperature": 3.0}}
    distiller = Distiller(teacher, student, config)
    result = distiller.fit(batches)
    (spec,) = distiller.matchers.specs.values()
    assert (spec.kind, spec.student_dim, spec.teacher_dim) == ("conv1x1", 16, 32)
    assert len(result.losses) == 6 and all(loss == loss for loss in result.losses)


def test_the_handlers_run_before_the_users_callbacks_in_event_order(tmp_path):
    """Progress, evaluation and checkpoints are event handlers fired before the user's callbacks:
    at a step's end the step's evaluation and checkpoint exist; at a stage end, its evaluation and
    the stage-end checkpoint do (transformers' test_event_flow, for the Distiller)."""
    from autodistill.distill.checkpoint import latest

    evaluated: list[int] = []  # how many evaluations ran, when the user's callback looked
    seen: list[tuple[str, int, int, str | None]] = []

    class Watch(DistillationCallback):
        def _note(self, event: str, state) -> None:
            found = latest(tmp_path)
            seen.append((event, state.global_step, len(evaluated), found.name if found else None))

        def on_step_end(self, state, control):
            self._note("step", state)

        def on_stage_end(self, state, control):
            self._note("stage_end", state)

    teacher, student = tiny_bert(hidden=32, layers=2, heads=4, seed=0), tiny_bert(hidden=16, layers=2, heads=2)
    config = {"seed": 1, "progress": False, "eval_every_steps": 2, "checkpoint_every_steps": 2,
              "regular_distillation": {"train_steps": 3, "loss_types": ["KL", "CE"]}}
    result = Distiller(teacher, student, config, callbacks=[Watch()]).fit(
        toy_batches(3, 8), toy_batches(1, 8), checkpoint_dir=tmp_path,
        eval_fn=lambda model, loader: evaluated.append(1) or 1.0)
    assert [e.global_step for e in result.evaluations] == [2, 3]
    assert seen == [("step", 1, 0, None), ("step", 2, 1, "step-000000002"), ("step", 3, 1, "step-000000002"),
                    ("stage_end", 3, 2, "step-000000003")]
