"""The search's one protocol object, `Task` (study/protocol.py): a task of one's own, seed 003's
function-style API adapted onto it, and a config's user functions over the built-in task."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState
from torch import nn

from autodistill.config.schema import SearchSection
from autodistill.errors import ConfigError
from autodistill.study.protocol import FunctionTask, Task, TaskWithFunctions, TrainedStudent
from autodistill.study.record import TEACHER
from autodistill.study.search import AutoDistillation


class WidthTask:
    """A toy task: a linear student of the searched width; accuracy grows with width."""

    measures_cost = True
    stops_early = False

    def __init__(self) -> None:
        self.calls: list[str] = []

    def build(self, architecture):
        self.calls.append("build")
        return nn.Linear(4, int(architecture["width"]))

    def cost(self, model):
        self.calls.append("cost")
        return {"params": sum(p.numel() for p in model.parameters()), "latency_p50_ms": model.out_features / 8}

    def train(self, model, callbacks=()):
        self.calls.append("train")
        return TrainedStudent(model, {"note": f"width {model.out_features}"})

    def evaluate(self, model):
        self.calls.append("evaluate")
        return {"accuracy": model.out_features / 32}

    def checkpoint_score(self, model):
        return model.out_features / 32

    def save(self, student, directory: Path):
        torch.save(student.model.state_dict(), directory / "student.pt")
        (directory / "note.json").write_text(json.dumps(student.artifacts))

    def teacher_figures(self, recorded):
        return recorded or {"accuracy": 1.0, "latency_p50_ms": 4.0}


def _section(**extra) -> SearchSection:
    return SearchSection(search_space={"width": [8, 16, 32]}, search_algorithm="random", max_trials=3, seed=0,
                         **extra)


def test_a_task_of_ones_own_runs_the_search_and_is_saved_with_its_artifacts(tmp_path):
    task = WidthTask()
    assert isinstance(task, Task)
    agent = AutoDistillation(task, _section(constraints={"params": 1000}), storage_url=f"sqlite:///{tmp_path / 's.db'}",
                             study_name="w", output_dir=tmp_path, progress=False)
    agent.search_loop()
    done = agent.study.get_trials(states=(TrialState.COMPLETE,))
    assert done and task.calls[:4] == ["build", "cost", "train", "evaluate"]
    note = json.loads((Path(done[0].user_attrs["student_path"]) / "note.json").read_text())
    assert note == {"note": f"width {done[0].params['width']}"}
    # the teacher row: measured by the task once, kept in the study, read back on a resume
    assert agent.study.user_attrs[TEACHER] == {"accuracy": 1.0, "latency_p50_ms": 4.0}
    assert agent.teacher_accuracy == 1.0 and agent.teacher_latency_ms == 4.0


def test_seed_003s_functions_are_adapted_into_a_task(tmp_path):
    def train(model, callbacks=()):
        return model

    agent = AutoDistillation(lambda a: nn.Linear(4, int(a["width"])), _section(),
                             train_func=train, eval_func=lambda m: {"accuracy": 0.5, "latency_p50_ms": 1.0},
                             storage_url=f"sqlite:///{tmp_path / 's.db'}", study_name="f", output_dir=tmp_path,
                             progress=False)
    assert isinstance(agent.task, FunctionTask) and not agent.task.measures_cost
    agent.search_loop()
    saved = Path(agent.study.get_trials(states=(TrialState.COMPLETE,))[0].user_attrs["student_path"])
    assert (saved / "student.pt").exists()


def test_a_task_and_functions_together_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="not both"):
        AutoDistillation(WidthTask(), _section(), train_func=lambda m: m, storage_url=f"sqlite:///{tmp_path / 's.db'}",
                         study_name="x", output_dir=tmp_path)


def test_a_configs_user_functions_replace_only_their_step():
    base = WidthTask()
    task = TaskWithFunctions(base, eval_func=lambda m: {"accuracy": 0.25})
    model = task.build({"width": 8})
    assert task.evaluate(model) == {"accuracy": 0.25}
    assert task.train(model).artifacts == {"note": "width 8"}  # the base task's training
    assert task.teacher_figures(None) == base.teacher_figures(None) and task.measures_cost
    plain = TaskWithFunctions(base, train_func=lambda m: m).train(model)
    assert plain.model is model and plain.artifacts == {}


def test_a_study_keeps_its_recorded_teacher_row(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    AutoDistillation(WidthTask(), _section(), storage_url=url, study_name="r", output_dir=tmp_path, progress=False)
    study = optuna.load_study(study_name="r", storage=url)
    study.set_user_attr(TEACHER, {"accuracy": 0.9, "latency_p50_ms": 3.0})
    again = AutoDistillation(WidthTask(), _section(), storage_url=url, study_name="r", output_dir=tmp_path,
                             progress=False)
    assert again.teacher_accuracy == 0.9 and again.teacher_latency_ms == 3.0
