"""The search service end to end on SQLite with tiny real models, through the CLI and the API."""

from __future__ import annotations

import json
import re
from pathlib import Path

import optuna
import pytest
import torch
from conftest import tiny_bert
from optuna.trial import TrialState
from search_processes import ctrl_c_works
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from autodistill.cli import main
from autodistill.config.schema import SearchSection
from autodistill.data import TokenizedDataset, make_loader, read_text_file
from autodistill.evaluation import accuracy
from autodistill.study.pareto import non_dominated
from autodistill.study.record import FAILURE_REASON, INVALID_REASON, REPEAT_OF
from autodistill.study.search import AutoDistillation
from autodistill.study.trials import finished_count

SEARCH_YAML = """\
model: {{name: tiny}}
teacher:
  model: {root}/teacher
data:
  train_file: {root}/train.csv
  validation_file: {root}/dev.csv
  test_file: {root}/test.csv
  max_length: 12
  batch_size: 16
auto_distillation:
  seed: 3
  progress: false
  optimizer: {{name: AdamW, learning_rate: 0.003}}
  search:
    search_space:
      hidden_size: [8, 16, 24]
      num_hidden_layers: {{low: 1, high: 2}}
      num_attention_heads: [2, 3, 4]
    search_algorithm: random
    metrics: [accuracy, latency]
    higher_is_better: [true, false]
    max_trials: 4
    seed: 0
  flash_distillation:
    block_names: bert.encoder.layer.{{i}}
    layer_mappings_for_knowledge_transfer:
      - ['bert.encoder.layer.{{i}}.output', 'bert.encoder.layer.{{t}}.output']
    loss_types: [MSE]
    train_steps: 2
  regular_distillation:
    train_steps: 4
    temperature: 2.0
  evaluation:
    latency: {{batch_size: 1, warmup: 1, repeats: 20, threads: 1}}
output_dir: {out}
{extra}"""


def write_config(root: Path, out: Path, extra: str = "", **replace: str) -> Path:
    text = SEARCH_YAML.format(root=root, out=out, extra=extra)
    for old, new in replace.items():
        text = text.replace(old, new)
    path = out.parent / f"{out.name}.yaml"
    path.write_text(text)
    return path


def load(out: Path) -> optuna.Study:
    return optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}")


@pytest.fixture(scope="module")
def searched(workspace, tmp_path_factory):
    """One search of 4 trials, then the same command again, then --max-trials 6."""
    out = tmp_path_factory.mktemp("search") / "run"
    config = write_config(workspace, out)
    counts = []
    for extra in ([], [], ["--max-trials", "6"]):
        assert main(["search", str(config), "--quiet", *extra]) == 0
        counts.append(finished_count(load(out)))
    return out, config, counts


def test_search_resumes_to_max_trials_in_total(searched):
    out, _, counts = searched
    assert counts == [4, 4, 6]
    study = load(out)
    assert study.metric_names == ["accuracy", "latency"]
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]


def test_each_trained_trial_records_what_it_needs(searched):
    out, _, _ = searched
    study = load(out)
    trained = [t for t in study.trials if t.state == TrialState.COMPLETE and REPEAT_OF not in t.user_attrs]
    assert trained
    for t in trained:
        for key in ("architecture", "accuracy", "test_accuracy", "latency_p50_ms", "latency_p90_ms",
                    "params", "size_mb", "train_seconds", "student_path"):
            assert key in t.user_attrs, key
        assert t.user_attrs["latency_p50_ms"] <= t.user_attrs["latency_p90_ms"]
        assert Path(t.user_attrs["student_path"], "config.json").exists()
        # the latency objective: the student's p50 at the study's reference teacher latency
        reference = study.user_attrs["teacher"]["latency_ms"]
        assert t.values[1] == pytest.approx(t.user_attrs["latency_min_ms"] * reference
                                            / t.user_attrs["teacher_latency_min_ms"])
        assert t.values[1] == t.user_attrs["latency_ms"] == pytest.approx(reference / t.user_attrs["speedup"])
    assert "accuracy" in study.user_attrs["teacher"] and study.user_attrs["data"]["sizes"]["train"] == 64


def test_impossible_architectures_are_rejected_before_the_build_and_recorded(searched):
    study = load(searched[0])
    for t in study.trials:
        arch = t.user_attrs["architecture"]
        invalid = arch["hidden_size"] % arch["num_attention_heads"] != 0
        assert (INVALID_REASON in t.user_attrs) == invalid
        if invalid:
            assert t.state == TrialState.PRUNED and "not divisible" in t.user_attrs[INVALID_REASON]
            assert "student_path" not in t.user_attrs


def test_pareto_json_equals_the_independently_computed_front(searched):
    out, _, _ = searched
    study = load(out)
    data = json.loads((out / "pareto.json").read_text())
    assert data["metrics"] == ["accuracy", "latency"] and data["directions"] == ["maximize", "minimize"]
    candidates = [t for t in study.trials if t.state == TrialState.COMPLETE and REPEAT_OF not in t.user_attrs]
    front = {candidates[i].number for i in non_dominated([t.values for t in candidates], ["maximize", "minimize"])}
    assert {row["number"] for row in data["front"]} == front
    assert data["teacher"]["accuracy"] == study.user_attrs["teacher"]["accuracy"]


def test_show_json_lists_the_front(searched, capsys):
    out, config, _ = searched
    capsys.readouterr()
    assert main(["show", str(config), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and set(rows[0]) >= {"number", "values", "architecture", "accuracy", "latency_ms"}
    assert main(["show", "--storage", f"sqlite:///{out / 'study.db'}"]) == 0
    table = capsys.readouterr().out
    assert "teacher" in table and "test acc" in table
    assert re.search(r"\d+(\.\d+)?x", table)  # a speed-up column, e.g. "3.2x"


def test_export_reloads_with_the_recorded_accuracy(searched, workspace, tmp_path):
    out, config, _ = searched
    study = load(out)
    best = max((t for t in study.trials if t.state == TrialState.COMPLETE), key=lambda t: t.values[0])
    target = tmp_path / "exported"
    assert main(["export", str(config), "--trial", str(best.number), "--out", str(target)]) == 0
    model = AutoModelForSequenceClassification.from_pretrained(target)
    tokenizer = AutoTokenizer.from_pretrained(target)
    train = read_text_file(workspace / "train.csv")
    dev = read_text_file(workspace / "dev.csv", label_names=list(train.label_names))
    loader = make_loader(TokenizedDataset(dev, tokenizer, max_length=12), batch_size=64, shuffle=False)
    assert accuracy(model, loader) == pytest.approx(best.user_attrs["accuracy"])


def test_export_of_an_unknown_trial_is_a_clear_error(searched, tmp_path, capsys):
    _, config, _ = searched
    assert main(["export", str(config), "--trial", "999", "--out", str(tmp_path / "x")]) == 2
    assert "trial 999 is not a completed trial" in capsys.readouterr().err


# -- the library API with user functions: every advisor ------------------------------------

def _space_section(algorithm: str, **extra) -> SearchSection:
    return SearchSection(search_space={"hidden_size": [8, 16], "num_hidden_layers": {"low": 1, "high": 3},
                                       "intermediate_size": {"low": 16, "high": 64, "step": 16}},
                         search_algorithm=algorithm, metrics=["accuracy", "params"],
                         higher_is_better=[True, False], max_trials=3, seed=1, **extra)


def _builder(arch):
    return tiny_bert(hidden=arch["hidden_size"], layers=arch["num_hidden_layers"], heads=2)


def _eval(model):
    params = sum(p.numel() for p in model.parameters())
    return {"accuracy": 1.0 - 1.0 / (1 + model.config.hidden_size * model.config.num_hidden_layers),
            "params": params}


@pytest.mark.parametrize("algorithm", ["BO", "TPE", "random", "grid", "NSGA2", "skopt"])
def test_every_advisor_runs_three_trials_into_the_storage(algorithm, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    agent = AutoDistillation(_builder, _space_section(algorithm), train_func=lambda m: m, eval_func=_eval,
                             storage_url=url, study_name=algorithm, output_dir=tmp_path, progress=False)
    best = agent.search_loop()
    reloaded = optuna.load_study(study_name=algorithm, storage=url)
    assert finished_count(reloaded) == 3
    trained = [t for t in reloaded.trials if t.state == TrialState.COMPLETE]
    assert all(set(t.params) == {"hidden_size", "num_hidden_layers", "intermediate_size"} for t in trained)
    assert best and all(a in [dict(t.params) for t in trained] for a in map(dict, best))


def test_a_trial_that_raises_is_failed_with_its_reason_and_the_search_goes_on(tmp_path):
    def train(model):
        if model.config.hidden_size == 16:
            raise RuntimeError("out of memory (simulated)")
        return model

    agent = AutoDistillation(_builder, _space_section("random", max_consecutive_failures=10), train_func=train,
                             eval_func=_eval, storage_url=f"sqlite:///{tmp_path / 's.db'}", study_name="f",
                             output_dir=tmp_path, progress=False)
    agent.search_loop()
    failed = [t for t in agent.study.trials if t.state == TrialState.FAIL]
    assert failed and all("out of memory (simulated)" in t.user_attrs[FAILURE_REASON] for t in failed)
    assert all(t.params["hidden_size"] == 16 for t in failed)
    assert finished_count(agent.study) == 3


def test_consecutive_failures_stop_the_search_with_a_message(tmp_path):
    from autodistill.study.search import SearchStopped

    def train(model):
        raise ValueError("broken train function")

    agent = AutoDistillation(_builder, _space_section("random", max_consecutive_failures=2), train_func=train,
                             eval_func=_eval, storage_url=f"sqlite:///{tmp_path / 's.db'}", study_name="f",
                             output_dir=tmp_path, progress=False)
    with pytest.raises(SearchStopped, match="2 trials failed in a row.*broken train function"):
        agent.search_loop()


def test_a_repeated_architecture_reuses_its_result_without_training(tmp_path):
    trained = []

    def train(model):
        trained.append(model.config.hidden_size)
        return model

    section = SearchSection(search_space={"hidden_size": [8, 16]}, search_algorithm="random", max_trials=2,
                            metrics=["accuracy", "params"], higher_is_better=[True, False], seed=0)
    agent = AutoDistillation(lambda a: tiny_bert(hidden=a["hidden_size"], layers=1, heads=2), section,
                             train_func=train, eval_func=_eval, storage_url=f"sqlite:///{tmp_path / 's.db'}",
                             study_name="r", output_dir=tmp_path, progress=False)
    agent.search_loop()
    assert sorted(trained) == [8, 16]  # each architecture trained once, whatever was proposed
    repeats = [t for t in agent.study.trials if REPEAT_OF in t.user_attrs]
    for t in repeats:
        original = agent.study.trials[t.user_attrs[REPEAT_OF]]
        assert t.values == original.values and t.params == original.params


# -- bad input: one clear line, exit 2, nothing trained ------------------------------------

@pytest.mark.parametrize("extra, replace, words", [
    ("", {"  max_trials: 4\n": "  max_trials: 4\n    oops: [\n"}, r"\.yaml:\d+:\d+: malformed YAML"),
    ("", {"search_algorithm: random": "search_algoritm: random"}, "did you mean 'search_algorithm'"),
    ("", {"max_trials: 4": "max_trials: four"}, "auto_distillation.search.max_trials"),
    ("", {"search_space:\n      hidden_size: [8, 16, 24]\n      num_hidden_layers: {low: 1, high: 2}\n"
          "      num_attention_heads: [2, 3, 4]": "search_space: {}"}, "search_space"),
    ("", {"metrics: [accuracy, latency]\n    higher_is_better: [true, false]": "metrics: [accuracy, f1]"},
     "metric 'f1' has no direction"),
    ("", {"search_algorithm: random": "search_algorithm: annealing"}, "unknown search_algorithm 'annealing'"),
])
def test_bad_search_configs_give_one_line_and_exit_2(workspace, tmp_path, capsys, extra, replace, words):
    out = tmp_path / "bad"
    config = write_config(workspace, out, extra, **replace)
    assert main(["search", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    import re
    assert re.search(words, err[0]), err[0]
    assert not (out / "study.db").exists() and not (out / "trials").exists()


def test_unreachable_storage_is_one_line_before_training(workspace, tmp_path, capsys):
    config = write_config(workspace, tmp_path / "s")
    assert main(["search", str(config), "--quiet", "--storage", "sqlite:////proc/no/such/study.db"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot open study storage" in err[0]
    assert not (tmp_path / "s" / "trials").exists()


def test_a_study_with_other_objectives_is_refused(workspace, tmp_path, capsys):
    out = tmp_path / "o"
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    study = optuna.create_study(study_name="tiny", storage=url, directions=["maximize"])
    study.set_metric_names(["f1"])
    config = write_config(workspace, out)
    assert main(["search", str(config), "--quiet", "--storage", url]) == 2
    assert "exists with objectives" in capsys.readouterr().err
    assert len(optuna.load_study(study_name="tiny", storage=url).trials) == 0


def test_latency_on_a_missing_gpu_fails_before_training(workspace, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "g"
    config = write_config(workspace, out, **{"threads: 1}": "threads: 1, device: cuda}"})
    assert main(["search", str(config), "--quiet"]) == 2
    assert "evaluation.latency.device" in capsys.readouterr().err
    assert not (out / "trials").exists()


def test_a_searched_key_the_teacher_config_lacks_is_a_config_error(workspace, tmp_path, capsys):
    out = tmp_path / "k"
    config = write_config(workspace, out, **{"num_attention_heads: [2, 3, 4]": "num_attention_head: [2, 4]"})
    assert main(["search", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no key 'num_attention_head'" in err and "did you mean 'num_attention_heads'" in err
    assert not (out / "trials").exists()


def test_user_functions_are_named_module_colon_function(workspace, tmp_path, monkeypatch):
    (tmp_path / "my_eval.py").write_text(
        "def evaluate(model):\n"
        "    return {'accuracy': 0.5, 'latency_p50_ms': float(model.config.hidden_size)}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "u"
    config = write_config(workspace, out,
                          **{"    max_trials: 4\n": "    max_trials: 2\n    eval_func: my_eval:evaluate\n"})
    assert main(["search", str(config), "--quiet"]) == 0
    trained = [t for t in load(out).trials if t.state == TrialState.COMPLETE]
    assert trained and all(t.values == [0.5, float(t.params["hidden_size"])] for t in trained)


def test_dashboard_serves_the_study_on_loopback_and_stops_on_ctrl_c(searched):
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    out, config, _ = searched
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).parent / "autodistill"
    proc = subprocess.Popen([str(exe), "dashboard", str(config), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ctrl_c_works)
    try:
        body = None
        for _ in range(240):  # up to 2 minutes on a busy machine
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                    body = json.loads(r.read())
                break
            except OSError:
                time.sleep(0.5)
        assert body is not None, proc.stderr.read() if proc.poll() is not None else "no answer"
        assert [s["study_name"] for s in body["study_summaries"]] == ["tiny"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert f"http://127.0.0.1:{port}/" in proc.stdout.read()


def test_students_can_start_from_the_teachers_layers(workspace, tmp_path):
    from autodistill.study.run import load_search_config
    from autodistill.study.task import DistillationTask

    out = tmp_path / "init"
    path = write_config(workspace, out,
                        **{"student:": "student:", "data:\n": "student: {init_from_teacher: true}\ndata:\n"})
    task = DistillationTask(load_search_config(path), output_dir=out, quiet=True)
    student = task.build({"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2})
    teacher_q = task.teacher.bert.encoder.layer[1].attention.self.query.weight  # layer round(1*2/1)-1 = 1
    assert torch.equal(student.bert.encoder.layer[0].attention.self.query.weight, teacher_q[:16, :16])
    assert torch.equal(student.bert.embeddings.word_embeddings.weight,
                       task.teacher.bert.embeddings.word_embeddings.weight[:, :16])


def _params(model):
    return {"params": sum(p.numel() for p in model.parameters()), "latency_p50_ms": 1.0}


def test_screening_prunes_over_budget_architectures_without_training(tmp_path):
    from autodistill.study.record import SCREENED_REASON

    limit = sum(p.numel() for p in tiny_bert(hidden=8, layers=3, heads=2).parameters())
    trained = []
    section = _space_section("random", constraints={"params": limit})
    agent = AutoDistillation(_builder, section, train_func=lambda m: trained.append(m.config.hidden_size) or m,
                             eval_func=_eval, cost_func=_params, storage_url=f"sqlite:///{tmp_path / 's.db'}",
                             study_name="c", output_dir=tmp_path, progress=False)
    agent.search_loop()
    screened = [t for t in agent.study.trials if SCREENED_REASON in t.user_attrs]
    assert screened and all(t.state == TrialState.PRUNED for t in screened)
    assert all(t.user_attrs["params"] > limit and "params" in t.user_attrs[SCREENED_REASON] for t in screened)
    assert all(t.params["hidden_size"] == 16 for t in screened) and 16 not in trained
    assert finished_count(agent.study) == 3 and len(trained) == 3  # screened trials cost no budget


def test_cost_is_measured_once_per_architecture(tmp_path):
    calls = []

    def cost(model):
        calls.append(model.config.hidden_size)
        return _params(model)

    section = SearchSection(search_space={"hidden_size": [8, 16]}, search_algorithm="random", max_trials=5,
                            metrics=["accuracy", "params"], higher_is_better=[True, False], seed=0,
                            allow_repeats=True)
    agent = AutoDistillation(lambda a: tiny_bert(hidden=a["hidden_size"], layers=1, heads=2), section,
                             train_func=lambda m: m, eval_func=_eval, cost_func=cost,
                             storage_url=f"sqlite:///{tmp_path / 's.db'}", study_name="m",
                             output_dir=tmp_path, progress=False)
    agent.search_loop()
    assert len(agent.study.trials) == 5 and sorted(calls) == sorted(set(calls))
    for t in agent.study.trials:
        assert t.user_attrs["params"] == _params(tiny_bert(hidden=t.params["hidden_size"], layers=1, heads=2))["params"]


def test_constraints_accept_only_known_budgets():
    with pytest.raises(Exception, match="latency_ms"):
        _space_section("random", constraints={"latency": 5})


# -- early stopping -------------------------------------------------------------------------

def _toy_train(model, callbacks=()):
    from conftest import toy_batches

    from autodistill import Distiller

    config = {"progress": False, "optimizer": {"learning_rate": 1e-3},
              "regular_distillation": {"train_steps": 6, "loss_types": ["KL", "CE"]}}
    Distiller(tiny_bert(hidden=16, layers=1, heads=2, seed=9).eval(), model, config,
              callbacks=callbacks).fit(toy_batches(2, padded=False))
    return model


def _early_agent(tmp_path, early, checkpoint, teacher_accuracy=None, max_trials=2, hidden_sizes=(8, 16)):
    from autodistill.config.schema import EarlyStoppingSection

    section = SearchSection(search_space={"hidden_size": list(hidden_sizes)}, search_algorithm="random",
                            max_trials=max_trials, metrics=["accuracy", "latency"],
                            higher_is_better=[True, False], seed=0)
    agent = AutoDistillation(lambda a: tiny_bert(hidden=a["hidden_size"], layers=1, heads=2), section,
                             train_func=_toy_train, eval_func=lambda m: {"accuracy": checkpoint(m)},
                             cost_func=lambda m: {"latency_p50_ms": m.config.hidden_size / 8.0},
                             early_stopping=EarlyStoppingSection(**early), checkpoint_func=checkpoint,
                             teacher_accuracy=teacher_accuracy, storage_url=f"sqlite:///{tmp_path / 's.db'}",
                             study_name="e", output_dir=tmp_path, progress=False)
    return agent


def test_a_slower_student_that_trails_a_faster_one_is_stopped_early(tmp_path):
    from autodistill.study.record import ACCURACY_CURVE, PRUNED_REASON

    checkpoint = lambda m: 0.9 if m.config.hidden_size == 8 else 0.5  # noqa: E731
    agent = _early_agent(tmp_path, {"eval_every_steps": 2, "margin": 0.05}, checkpoint)
    agent.study.enqueue_trial({"hidden_size": 8})
    agent.study.enqueue_trial({"hidden_size": 16})
    agent.search_loop()
    fast, slow = agent.study.trials[:2]
    assert fast.state == TrialState.COMPLETE and fast.user_attrs[ACCURACY_CURVE] == {"2": 0.9, "4": 0.9, "6": 0.9}
    assert slow.state == TrialState.PRUNED and slow.user_attrs[ACCURACY_CURVE] == {"2": 0.5}
    assert "trails trial 0 at step 2" in slow.user_attrs[PRUNED_REASON]
    assert slow.user_attrs["accuracy"] == 0.5  # its last value
    assert finished_count(agent.study) == 2  # an early-stopped trial used its training: it counts


def test_an_early_stopped_architecture_proposed_again_is_not_trained_again(tmp_path):
    from autodistill.study.record import PRUNED_REASON

    checkpoint = lambda m: 0.9 if m.config.hidden_size == 8 else 0.5  # noqa: E731
    agent = _early_agent(tmp_path, {"eval_every_steps": 2, "margin": 0.05}, checkpoint, max_trials=3,
                         hidden_sizes=(8, 16, 24))
    trained, train = [], agent.task.train_func  # the seed-style functions, adapted into agent.task
    agent.task.train_func = lambda model, **kw: trained.append(model.config.hidden_size) or train(model, **kw)
    for hidden in (8, 16, 16, 24):
        agent.study.enqueue_trial({"hidden_size": hidden})
    agent.search_loop()
    stopped, again = agent.study.trials[1:3]
    assert trained == [8, 16, 24]
    assert stopped.state == again.state == TrialState.PRUNED and again.user_attrs[REPEAT_OF] == 1
    assert again.user_attrs[PRUNED_REASON] == stopped.user_attrs[PRUNED_REASON]
    assert len(agent.study.trials) == 4  # the repeat cost no budget: 3 trained trials finish the search


def test_a_faster_student_is_not_stopped_by_a_slower_ones_accuracy(tmp_path):
    checkpoint = lambda m: 0.5 if m.config.hidden_size == 8 else 0.9  # noqa: E731
    agent = _early_agent(tmp_path, {"eval_every_steps": 2}, checkpoint)
    agent.study.enqueue_trial({"hidden_size": 16})
    agent.study.enqueue_trial({"hidden_size": 8})
    agent.search_loop()
    assert [t.state for t in agent.study.trials[:2]] == [TrialState.COMPLETE, TrialState.COMPLETE]


def test_the_retention_floor_stops_a_student_far_below_the_teacher(tmp_path):
    from autodistill.study.record import PRUNED_REASON

    agent = _early_agent(tmp_path, {"eval_every_steps": 2, "min_steps": 4, "retention_floor": 0.8,
                                    "pareto": False}, lambda m: 0.5, teacher_accuracy=0.95, max_trials=1)
    agent.search_loop()
    (trial,) = agent.study.trials
    assert trial.state == TrialState.PRUNED and "retention floor" in trial.user_attrs[PRUNED_REASON]
    assert "step 4" in trial.user_attrs[PRUNED_REASON]


def test_early_stopping_needs_a_train_function_that_takes_callbacks(tmp_path):
    from autodistill.config.schema import EarlyStoppingSection
    from autodistill.errors import ConfigError

    with pytest.raises(ConfigError, match="callbacks"):
        AutoDistillation(_builder, _space_section("random"), train_func=lambda m: m, eval_func=_eval,
                         early_stopping=EarlyStoppingSection(), checkpoint_func=lambda m: 0.5,
                         storage_url=f"sqlite:///{tmp_path / 's.db'}", study_name="x", output_dir=tmp_path,
                         progress=False)


def test_early_stopping_from_the_config_records_accuracy_curves(workspace, tmp_path):
    from autodistill.study.record import ACCURACY_CURVE

    out = tmp_path / "es"
    config = write_config(workspace, out, **{
        "    max_trials: 4\n": "    max_trials: 2\n",
        "  regular_distillation:\n": "  early_stopping: {eval_every_steps: 2}\n  regular_distillation:\n"})
    assert main(["search", str(config), "--quiet"]) == 0
    finished = [t for t in load(out).trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
                and "invalid_reason" not in t.user_attrs]
    assert finished and all(set(t.user_attrs[ACCURACY_CURVE]) <= {"2", "4"} for t in finished)
    assert all(t.user_attrs[ACCURACY_CURVE] for t in finished)


def test_a_minimum_speed_up_over_the_teacher_screens_slow_students(tmp_path):
    from autodistill.study.record import SCREENED_REASON

    section = _space_section("random", constraints={"min_speedup": 2.0})
    cost = lambda m: {"latency_p50_ms": float(m.config.hidden_size)}  # noqa: E731  (8 or 16 ms)
    agent = AutoDistillation(_builder, section, train_func=lambda m: m, eval_func=_eval, cost_func=cost,
                             teacher_latency_ms=20.0, storage_url=f"sqlite:///{tmp_path / 's.db'}",
                             study_name="v", output_dir=tmp_path, progress=False)
    agent.search_loop()
    screened = [t for t in agent.study.trials if SCREENED_REASON in t.user_attrs]
    assert screened and all(t.params["hidden_size"] == 16 for t in screened)
    assert all("speed-up 1.25x < 2x" in t.user_attrs[SCREENED_REASON] for t in screened)
    assert all(t.params["hidden_size"] == 8 for t in agent.study.trials if t.state == TrialState.COMPLETE)


def test_screening_uses_the_teacher_latency_timed_with_the_student(tmp_path):
    """A cost function that timed the teacher alongside the student (as the built-in one does)
    is screened against that paired figure, not the study's once-measured teacher latency."""
    from autodistill.study.record import SCREENED_REASON

    section = _space_section("random", constraints={"min_speedup": 2.0})
    cost = lambda m: {"latency_p50_ms": float(m.config.hidden_size),  # noqa: E731
                      "teacher_latency_p50_ms": 40.0, "speedup": 40.0 / m.config.hidden_size}
    agent = AutoDistillation(_builder, section, train_func=lambda m: m, eval_func=_eval, cost_func=cost,
                             teacher_latency_ms=20.0, storage_url=f"sqlite:///{tmp_path / 's.db'}",
                             study_name="v", output_dir=tmp_path, progress=False)
    agent.search_loop()
    assert not [t for t in agent.study.trials if SCREENED_REASON in t.user_attrs]  # 40/16 = 2.5x passes
    assert {t.params["hidden_size"] for t in agent.study.trials if t.state == TrialState.COMPLETE} == {8, 16}


def test_a_space_whose_every_architecture_is_screened_ends_without_error(tmp_path):
    section = SearchSection(search_space={"hidden_size": [8, 16]}, search_algorithm="random", max_trials=3,
                            metrics=["accuracy", "params"], higher_is_better=[True, False], seed=0,
                            constraints={"params": 1.0})
    agent = AutoDistillation(lambda a: tiny_bert(hidden=a["hidden_size"], layers=1, heads=2), section,
                             train_func=lambda m: m, eval_func=_eval, cost_func=_params,
                             storage_url=f"sqlite:///{tmp_path / 's.db'}", study_name="x", output_dir=tmp_path,
                             progress=False)
    assert agent.search_loop() == []
    assert finished_count(agent.study) == 0 and len(agent.study.trials) >= 2


def test_two_studies_in_one_output_directory_keep_their_own_students(tmp_path):
    paths = []
    for name in ("a", "b"):
        section = _space_section("random").model_copy(update={"max_trials": 1})
        agent = AutoDistillation(_builder, section, train_func=lambda m: m,
                                 eval_func=_eval, storage_url=f"sqlite:///{tmp_path / 's.db'}", study_name=name,
                                 output_dir=tmp_path, progress=False)
        agent.search_loop()
        paths.append(agent.study.trials[0].user_attrs["student_path"])
    assert paths[0] != paths[1] and all(Path(p, "config.json").exists() for p in paths)


def test_an_advisor_stuck_on_settled_architectures_is_helped_by_random_draws(tmp_path):
    """A sampler that keeps proposing an architecture already screened out (model-based
    samplers learn nothing from pruned trials) does not end the search: after a few idle
    proposals the search queues random architectures it has not tried, and trains them."""
    from autodistill.study.loop import ADVISOR_PATIENCE
    from autodistill.study.record import PROPOSED_BY

    class Stuck(optuna.samplers.RandomSampler):
        def sample_independent(self, study, trial, name, distribution):
            return {"hidden_size": 16, "num_hidden_layers": 3, "intermediate_size": 64}[name]

    section = _space_section("random", constraints={"min_speedup": 2.0})
    cost = lambda m: {"latency_p50_ms": float(m.config.hidden_size)}  # noqa: E731  (16 ms: screened)
    agent = AutoDistillation(_builder, section, train_func=lambda m: m, eval_func=_eval, cost_func=cost,
                             teacher_latency_ms=20.0, storage_url=f"sqlite:///{tmp_path / 's.db'}",
                             study_name="stuck", output_dir=tmp_path, progress=False)
    agent.study.sampler = Stuck(seed=0)
    agent.search_loop()
    trained = [t for t in agent.study.trials if t.state == TrialState.COMPLETE]
    assert finished_count(agent.study) == 3 and len(trained) == 3
    assert all(t.params["hidden_size"] == 8 and t.user_attrs.get(PROPOSED_BY) for t in trained)
    first_random = next(t.number for t in agent.study.trials if t.user_attrs.get(PROPOSED_BY))
    assert first_random == ADVISOR_PATIENCE  # after exactly that many idle proposals
