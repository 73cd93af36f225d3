"""`search.strategy: supernet`: one supernet trained, proxy trials scored by slicing it in a study of
their own, the proxy front trained in full from its supernet weights in the study itself."""

from __future__ import annotations

from types import SimpleNamespace

import optuna
import pytest
import torch
from optuna.trial import TrialState
from test_search import write_config

from autodistill.cli import main
from autodistill.study import supernet_search
from autodistill.study.record import STUDENT_PATH
from autodistill.study.supernet_search import FIDELITY, PROXY_TRIAL, FinalTask, choose_finals

SUPERNET = ("  search:\n", "  supernet: {train_steps: 6, checkpoint_every_steps: 3, proxy_trials: 10, "
                          "final_trials: 2, importance_batches: 2}\n  search:\n")
STRATEGY = ("    max_trials: 4\n", "    max_trials: 4\n    strategy: supernet\n")


def _config(workspace, out, **replace):
    return write_config(workspace, out, **dict([SUPERNET, STRATEGY]), **replace)


def _study(out, name):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}")


@pytest.fixture(scope="module")
def supernet_searched(workspace, tmp_path_factory):
    """A supernet search, watched: what each final trial started from; then the same command again."""
    out = tmp_path_factory.mktemp("supernet") / "run"
    config = write_config(workspace, out, **dict([SUPERNET]))  # the strategy from the command line
    starts: dict[str, tuple[dict, dict]] = {}
    original = FinalTask.build

    def build(self, architecture):
        student = original(self, architecture)
        starts[repr(dict(architecture))] = (
            {k: v.clone() for k, v in student.state_dict().items()},
            self.elastic.extract(architecture).state_dict())
        return student

    patch = pytest.MonkeyPatch()
    patch.setattr(FinalTask, "build", build)
    try:
        assert main(["search", str(config), "--quiet", "--strategy", "supernet"]) == 0
        first = (len(_study(out, "tiny").trials), len(_study(out, "tiny-proxy").trials))
        from autodistill.supernet import loading

        calls = []
        patch.setattr(loading, "train_supernet", lambda *a, **k: calls.append(1))
        assert main(["search", str(config), "--quiet", "--strategy", "supernet"]) == 0
        again = (len(_study(out, "tiny").trials), len(_study(out, "tiny-proxy").trials))
    finally:
        patch.undo()
    return SimpleNamespace(out=out, starts=starts, first=first, again=again, retrained=calls)


def test_proxy_trials_are_scored_without_training_in_a_study_of_their_own(supernet_searched):
    proxy = _study(supernet_searched.out, "tiny-proxy")
    complete = proxy.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) >= 2
    assert all(t.user_attrs[FIDELITY] == "proxy" and STUDENT_PATH not in t.user_attrs for t in complete)
    assert all("latency_p50_ms" in t.user_attrs and 0 <= t.values[0] <= 1 for t in complete)
    assert not any(key.startswith("eager_") for t in complete for key in t.user_attrs)  # eager, one set
    assert proxy.user_attrs[FIDELITY] == "proxy"
    assert not (supernet_searched.out / "trials" / "tiny-proxy").exists()


def test_final_trials_are_the_proxy_front_trained_from_supernet_weights(supernet_searched):
    out = supernet_searched.out
    proxy, final = _study(out, "tiny-proxy"), _study(out, "tiny")
    trained = final.get_trials(states=(TrialState.COMPLETE,))
    assert 1 <= len(trained) <= 2
    front = {t.number: t for t in proxy.best_trials}
    for t in trained:
        assert t.user_attrs[FIDELITY] == "full"
        assert t.params == front[t.user_attrs[PROXY_TRIAL]].params
        assert (out / "trials" / "tiny" / f"{t.number:05d}").is_dir()
        started, sliced = supernet_searched.starts[repr(dict(t.params))]
        assert started.keys() == sliced.keys()
        assert all(torch.equal(started[k], sliced[k]) for k in sliced)
    assert final.user_attrs[supernet_search.PROXY_STUDY] == "tiny-proxy"


def test_the_pareto_front_and_show_hold_full_fidelity_trials_only(supernet_searched, capsys):
    import json

    rows = json.loads((supernet_searched.out / "pareto.json").read_text())["front"]
    final = _study(supernet_searched.out, "tiny")
    numbers = {t.number for t in final.get_trials(states=(TrialState.COMPLETE,))}
    assert rows and {r["number"] for r in rows} <= numbers
    assert main(["show", "--output-dir", str(supernet_searched.out), "--study-name", "tiny", "--json"]) == 0
    assert {r["number"] for r in json.loads(capsys.readouterr().out)} <= numbers


def test_a_second_run_reuses_the_supernet_and_adds_no_trial(supernet_searched):
    assert supernet_searched.again == supernet_searched.first
    assert supernet_searched.retrained == []


def test_final_trials_spread_over_the_front():
    front = list(range(7))
    assert choose_finals(front, 3) == [0, 3, 6]
    assert choose_finals(front, 1) == [0]
    assert choose_finals(front, 9) == front


@pytest.mark.parametrize("replace, words", [
    ({"      hidden_size: [8, 16, 24]\n": "      hidden_size: [8, 64]\n"}, "hidden_size"),
    ({"    search_algorithm: random\n": "    search_algorithm: random\n    model_builder: test_search:_builder\n"},
     "search.model_builder"),
])
def test_what_a_supernet_cannot_span_is_one_line_before_any_work(workspace, tmp_path, capsys, replace, words):
    out = tmp_path / "run"
    assert main(["search", str(_config(workspace, out, **replace)), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err and "Traceback" not in err
    assert not (out / "supernet").exists() and not (out / "study.db").exists()


def test_the_search_draws_no_impossible_proxy_architecture(supernet_searched):
    """Its own draws (after a repeat or a stuck advisor) are valid: heads divide the hidden size."""
    drawn = [t for t in _study(supernet_searched.out, "tiny-proxy").trials if t.user_attrs.get("proposed_by")]
    assert all(t.params["hidden_size"] % t.params["num_attention_heads"] == 0 for t in drawn)


@pytest.mark.parametrize("proxy_trials, valid, budget", [(200, 14, 14), (10, 14, 10), (200, None, 200)])
def test_the_proxy_budget_is_at_most_the_valid_architectures(proxy_trials, valid, budget, caplog):
    space = SimpleNamespace(size=lambda: None if valid is None else 18)
    proxy = SimpleNamespace(valid_count=lambda: valid, search_space=space)
    with caplog.at_level("INFO", logger="autodistill.study.supernet_search"):
        assert supernet_search.proxy_budget(proxy, proxy_trials) == budget
    assert (f"the space holds 18, {valid} of them valid" in caplog.text) == (valid is not None)


def test_a_proxy_fine_tune_trains_each_slice_the_same_steps_and_leaves_the_supernet_alone(workspace, tmp_path):
    """`supernet.proxy_fine_tune_steps: 3`: each proxy's slice is trained 3 regular-distillation steps
    (its weights move, the supernet's do not; the same batches for every architecture, so scoring one
    twice gives one model), and its figures record the steps; 0 scores the slice as it is."""
    import copy

    from autodistill.distill.distiller import Distiller
    from autodistill.study.run import load_search_config
    from autodistill.study.supernet_search import PROXY_FINE_TUNE_STEPS, ProxyTask
    from autodistill.study.task import DistillationTask
    from autodistill.supernet import elastic_for

    config = load_search_config(_config(workspace, tmp_path / "run", **dict([(
        "final_trials: 2", "final_trials: 2, proxy_fine_tune_steps: 3")])))
    assert config.auto_distillation.supernet.proxy_fine_tune_steps == 3
    task = DistillationTask(config, output_dir=tmp_path / "run", quiet=True)
    elastic = elastic_for(copy.deepcopy(task.teacher))
    before = {k: v.clone() for k, v in elastic.model.state_dict().items()}
    architecture = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2}
    steps = []  # optimizer steps per stage run
    original = Distiller._run_stage

    def run_stage(self, *args, **kwargs):
        record = original(self, *args, **kwargs)
        steps.append(len(record.losses))
        return record

    patch = pytest.MonkeyPatch()
    patch.setattr(Distiller, "_run_stage", run_stage)
    try:
        tuned = ProxyTask(task, elastic, fine_tune_steps=3)
        first, second = (tuned.train(tuned.build(architecture)).model for _ in range(2))
        plain = ProxyTask(task, elastic, proxy_head="sliced")
        sliced = plain.train(plain.build(architecture)).model
    finally:
        patch.undo()
    assert steps == [3, 3]
    assert all(torch.equal(v, before[k]) for k, v in elastic.model.state_dict().items())
    assert all(torch.equal(v, sliced.state_dict()[k]) for k, v in elastic.extract(architecture).state_dict().items())
    assert any(not torch.equal(v, sliced.state_dict()[k]) for k, v in first.state_dict().items())
    assert all(torch.equal(v, second.state_dict()[k]) for k, v in first.state_dict().items())
    assert tuned.evaluate(first)[PROXY_FINE_TUNE_STEPS] == 3 and plain.evaluate(sliced)[PROXY_FINE_TUNE_STEPS] == 0


class _FirstWord(torch.nn.Module):
    """A pooler that passes on the first word's hidden state."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return hidden_states[:, 1]


def test_a_refit_proxy_head_scores_a_slice_whose_own_head_is_destroyed(workspace, tmp_path):
    """`supernet.proxy_head: refit`: a linear classifier fitted on the features the slice's classifier
    reads scores it, so a slice with its classifier zeroed (the sliced head predicts one class: the
    validation share of that class) still separates the workspace's classes, whose first word decides
    the label (the untrained teacher's pooler is near constant, so the slice reads that word's hidden
    state instead); the figures record the head."""
    import copy

    from autodistill.study.run import load_search_config
    from autodistill.study.supernet_search import PROXY_HEAD, ProxyTask
    from autodistill.study.task import DistillationTask
    from autodistill.supernet import elastic_for

    config = load_search_config(_config(workspace, tmp_path / "run", **dict([(
        "final_trials: 2", "final_trials: 2, proxy_head: refit")])))
    assert config.auto_distillation.supernet.proxy_head == "refit"
    task = DistillationTask(config, output_dir=tmp_path / "run", quiet=True)
    elastic = elastic_for(copy.deepcopy(task.teacher))
    refit, sliced = ProxyTask(task, elastic), ProxyTask(task, elastic, proxy_head="sliced")  # refit: the default
    model = refit.build({"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2})
    model.bert.pooler = _FirstWord()
    torch.nn.init.zeros_(model.classifier.weight)
    torch.nn.init.zeros_(model.classifier.bias)
    plain, refitted = sliced.evaluate(model), refit.evaluate(model)
    labels = torch.cat([batch["labels"] for batch in task.validation_loader])
    assert plain["accuracy"] == float((labels == 0).float().mean())
    assert refitted["accuracy"] > max(plain["accuracy"], 1 - plain["accuracy"]) + 0.2
    assert (refitted[PROXY_HEAD], plain[PROXY_HEAD]) == ("refit", "sliced")


def test_proxies_are_refitted_unless_the_study_ranks_a_deployed_graph(workspace, tmp_path):
    """The default proxy head is `refit`; with evaluation.deployment (whose graph has no classifier
    module to refit on) it is `sliced`, the shipped graph scored as it ships; a head the config
    names is kept either way."""
    pytest.importorskip("onnxruntime", reason="deployment needs the onnx extra: pip install 'autodistill-nas[onnx]'")
    from test_deploy import LATENCY_LINE

    from autodistill.study.run import load_search_config

    deployment = LATENCY_LINE + "\n    deployment: {runtime: onnxruntime, quantization: dynamic_int8}"
    named = ("final_trials: 2", "final_trials: 2, proxy_head: refit")
    configs = [load_search_config(_config(workspace, tmp_path / name, **dict(edits)))
               for name, edits in (("plain", []), ("deployed", [(LATENCY_LINE, deployment)]),
                                   ("named", [(LATENCY_LINE, deployment), named]))]
    heads = [config.auto_distillation.supernet.proxy_head for config in configs]
    assert heads == ["refit", "sliced", "refit"]


def test_the_proxy_head_keeps_the_supernet_key():
    from autodistill.config.supernet import SupernetSection

    assert SupernetSection(proxy_head="sliced").key_settings() == SupernetSection().key_settings()


def test_the_proxy_fine_tune_keeps_the_supernet_key():
    from autodistill.config.supernet import SupernetSection

    assert SupernetSection(proxy_fine_tune_steps=20).key_settings() == SupernetSection().key_settings()


def test_deployed_proxy_trials_are_timed_and_scored_as_the_deployed_graph(workspace, tmp_path, monkeypatch):
    """evaluation.deployment on: a proxy's latency is its ONNX Runtime int8 graph's, paired with the deployed
    teacher, and its accuracy the graph's, as a final trial's (the eager slice's kept as `eager_*`); the one
    graph is timed and scored (each proxy exported once)."""
    pytest.importorskip("onnxruntime", reason="deployment needs the onnx extra: pip install 'autodistill-nas[onnx]'")
    from test_deploy import LATENCY_LINE

    from autodistill.evaluation import latency
    from autodistill.evaluation.deployment import Deployer, OnnxRuntimeModel
    from autodistill.study.supernet_search import ProxyTask
    from autodistill.study.task import DistillationTask

    scored: dict[str, set[float]] = {"deployed": set(), "eager": set()}
    timed: list[list[str]] = []
    validation_accuracy, measure_latencies = DistillationTask.validation_accuracy, latency.measure_latencies

    def score(self, model):
        accuracy = validation_accuracy(self, model)
        scored["deployed" if isinstance(model, OnnxRuntimeModel) else "eager"].add(accuracy)
        return accuracy

    def time_pair(models, spec):
        timed.append([type(m).__name__ for m in models])
        return measure_latencies(models, spec)

    built: list[torch.nn.Module] = []  # the proxies' models, and every model deployed (kept: no id reused)
    exported: list[torch.nn.Module] = []
    build, deploy = ProxyTask.build, Deployer._deploy

    def build_proxy(self, architecture):
        model = build(self, architecture)
        built.append(model)
        return model

    def export(self, model, folder):
        exported.append(model)
        return deploy(self, model, folder)

    monkeypatch.setattr(ProxyTask, "build", build_proxy)
    monkeypatch.setattr(Deployer, "_deploy", export)
    monkeypatch.setattr(DistillationTask, "validation_accuracy", score)
    monkeypatch.setattr("autodistill.study.task.measure_latencies", time_pair)
    out = tmp_path / "run"
    deployment = "\n    deployment: {runtime: onnxruntime, quantization: dynamic_int8}"
    config = _config(workspace, out, **{"proxy_trials: 10": "proxy_trials: 3", "final_trials: 2": "final_trials: 1",
                                        LATENCY_LINE: LATENCY_LINE + deployment})
    assert main(["search", str(config), "--quiet"]) == 0
    proxies = [t for t in _study(out, "tiny-proxy").get_trials(states=(TrialState.COMPLETE,))
               if "repeat_of" not in t.user_attrs]
    assert proxies
    for trial in proxies:
        attrs = trial.user_attrs
        assert attrs["accuracy"] in scored["deployed"] and attrs["eager_accuracy"] in scored["eager"]
        assert attrs.get("eager_latency_ms") is not None and attrs.get("eager_speedup") is not None
        assert trial.values == [attrs["accuracy"], attrs["latency_ms"]]
    # every student timed in ONNX Runtime was paired with the deployed teacher
    assert ["OnnxRuntimeModel", "OnnxRuntimeModel"] in timed
    assert all(pair[0] == pair[1] for pair in timed)
    assert len(built) >= len(proxies) and all(sum(m is model for m in exported) == 1 for model in built)
    assert not any(p.name.startswith(".") for p in (out / "deployed").iterdir())  # no scratch or shipped left
