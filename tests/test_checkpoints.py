"""Checkpoints and exact resume: a run stopped after a checkpoint and resumed ends with the weights
and losses of an uninterrupted run (dropout on, shuffled loader); a checkpoint of another plan or
architecture is refused, and none is overwritten by a run that does not resume."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import tiny_bert, toy_batches
from torch.utils.data import DataLoader
from transformers import BertForSequenceClassification

from autodistill import ConfigError, DistillationCallback, Distiller
from autodistill.distill.checkpoint import latest


def dropout_bert(*, hidden: int = 16, layers: int = 2, seed: int = 1) -> BertForSequenceClassification:
    return tiny_bert(hidden=hidden, layers=layers, heads=2, seed=seed,
                     hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.1)


def shuffled_loader() -> DataLoader:
    """5 batches an epoch in an order drawn by the loader's own generator."""
    examples = [{k: v[i] for k, v in b.items()} for b in toy_batches(5, 8, seed=3) for i in range(8)]
    return DataLoader(examples, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(4))


def plan(every: int = 2, lr: float = 1e-2) -> dict:
    return {
        "seed": 7, "progress": False, "checkpoint_every_steps": every,
        "optimizer": {"name": "AdamW", "learning_rate": lr},
        "schedule": {"name": "linear", "warmup_steps": 2},
        "flash_distillation": {
            "block_names": ["bert.encoder.layer.0", "bert.encoder.layer.1"],
            "layer_mappings_for_knowledge_transfer": [
                [["bert.encoder.layer.0.output", "bert.encoder.layer.1.output"]],
                [["bert.encoder.layer.1.output", "bert.encoder.layer.3.output"]]],
            "loss_types": [["MSE"], ["MSE"]], "train_steps": [3, 3]},
        "regular_distillation": {"train_steps": 5, "loss_types": ["KL", "CE"], "temperature": 2.0},
    }


class StopAt(DistillationCallback):
    """Raises after global step `step`, as a killed run would stop."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, state, control):
        if state.global_step == self.step:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def reference_teacher():
    return tiny_bert(hidden=32, layers=4, heads=4, seed=0)


@pytest.fixture(scope="module")
def uninterrupted(reference_teacher, tmp_path_factory):
    student = dropout_bert()
    result = Distiller(copy.deepcopy(reference_teacher), student, plan()).fit(
        shuffled_loader(), checkpoint_dir=tmp_path_factory.mktemp("whole"))
    return result, student.state_dict()


# every 2 steps; stages of 3, 3 and 5 steps: 6 is a stage end, 2, 4 and 10 are mid-stage (a checkpoint
# is written before the step's callbacks run)
@pytest.mark.parametrize("stop_after, resumes_at", [(3, 2), (4, 4), (7, 6), (11, 10)])
def test_a_stopped_run_resumed_gives_the_uninterrupted_weights(reference_teacher, uninterrupted, tmp_path,
                                                               stop_after, resumes_at):
    folder = tmp_path / "checkpoints"
    with pytest.raises(KeyboardInterrupt):
        Distiller(copy.deepcopy(reference_teacher), dropout_bert(), plan(),
                  callbacks=[StopAt(stop_after)]).fit(shuffled_loader(), checkpoint_dir=folder)
    assert latest(folder).name == f"step-{resumes_at:09d}"
    student = dropout_bert(seed=99)  # other initial weights: the checkpoint's must be loaded
    result = Distiller(copy.deepcopy(reference_teacher), student, plan()).fit(shuffled_loader(), resume_from=folder)
    whole, weights = uninterrupted
    assert result.losses == whole.losses
    assert [s.name for s in result.stages] == [s.name for s in whole.stages]
    for name, tensor in student.state_dict().items():
        assert torch.equal(tensor, weights[name]), name


def test_a_finished_run_resumed_trains_no_more(reference_teacher, uninterrupted, tmp_path):
    folder = tmp_path / "checkpoints"
    Distiller(copy.deepcopy(reference_teacher), dropout_bert(), plan()).fit(shuffled_loader(), checkpoint_dir=folder)
    student = dropout_bert(seed=99)
    result = Distiller(copy.deepcopy(reference_teacher), student, plan()).fit(shuffled_loader(), resume_from=folder)
    assert result.losses == uninterrupted[0].losses
    assert all(torch.equal(t, uninterrupted[1][n]) for n, t in student.state_dict().items())


def _stopped_run(teacher, folder, stop_after=4):
    with pytest.raises(KeyboardInterrupt):
        Distiller(copy.deepcopy(teacher), dropout_bert(), plan(), callbacks=[StopAt(stop_after)]).fit(
            shuffled_loader(), checkpoint_dir=folder)
    return latest(folder), sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("other, words", [
    (lambda: (dropout_bert(), plan(lr=2e-2)), "another plan or student architecture"),
    (lambda: (dropout_bert(hidden=24), plan()), "another plan or student architecture"),
])
def test_a_checkpoint_of_another_plan_or_architecture_is_refused(reference_teacher, tmp_path, other, words):
    folder = tmp_path / "checkpoints"
    before, files = _stopped_run(reference_teacher, folder)
    student, config = other()
    with pytest.raises(ConfigError, match=words) as error:
        Distiller(copy.deepcopy(reference_teacher), student, config).fit(shuffled_loader(), resume_from=folder)
    assert "\n" not in str(error.value) and "new folder" in str(error.value)
    assert latest(folder) == before and sorted(p.name for p in folder.iterdir()) == files


def test_a_resumed_run_may_change_what_does_not_change_the_weights(reference_teacher, uninterrupted, tmp_path):
    folder = tmp_path / "checkpoints"
    _stopped_run(reference_teacher, folder, stop_after=5)
    student = dropout_bert(seed=99)
    config = {**plan(every=3), "progress": True, "eval_every_steps": 4, "device": "cpu"}
    Distiller(copy.deepcopy(reference_teacher), student, config, quiet=True).fit(
        shuffled_loader(), toy_batches(1, 8, seed=8), resume_from=folder)
    assert all(torch.equal(t, uninterrupted[1][n]) for n, t in student.state_dict().items())


def test_a_run_that_does_not_resume_never_overwrites_a_checkpoint(reference_teacher, tmp_path):
    folder = tmp_path / "checkpoints"
    before, files = _stopped_run(reference_teacher, folder)
    stamp = (before / "state.pt").stat().st_mtime_ns
    with pytest.raises(ConfigError, match="holds a checkpoint of an earlier run.*resume"):
        Distiller(copy.deepcopy(reference_teacher), dropout_bert(), plan()).fit(shuffled_loader(),
                                                                               checkpoint_dir=folder)
    assert sorted(p.name for p in folder.iterdir()) == files and (before / "state.pt").stat().st_mtime_ns == stamp


def test_resuming_from_a_folder_without_a_checkpoint_names_the_fix(reference_teacher, tmp_path):
    with pytest.raises(ConfigError, match="holds no complete checkpoint; start without resuming"):
        Distiller(copy.deepcopy(reference_teacher), dropout_bert(), plan()).fit(shuffled_loader(),
                                                                               resume_from=tmp_path)


def test_only_the_newest_checkpoint_is_kept_and_no_temporary(reference_teacher, tmp_path):
    folder = tmp_path / "checkpoints"
    _stopped_run(reference_teacher, folder, stop_after=5)
    assert sorted(p.name for p in folder.iterdir()) == ["latest", "step-000000004"]
    assert sorted(p.name for p in (folder / "step-000000004").iterdir()) == [
        "checkpoint.json", "matchers.pt", "state.pt"]


def test_interval_zero_checkpoints_at_stage_ends_only(reference_teacher, tmp_path):
    folder = tmp_path / "checkpoints"
    with pytest.raises(KeyboardInterrupt):
        Distiller(copy.deepcopy(reference_teacher), dropout_bert(), plan(every=0),
                  callbacks=[StopAt(5)]).fit(shuffled_loader(), checkpoint_dir=folder)
    assert latest(folder).name == "step-000000003"


# `autodistill distill CONFIG --resume`: a run killed with -9 mid-way, resumed from its checkpoint

KILLED = """
import os, signal, sys
import torch
torch.set_num_threads(1)  # as the test process runs (conftest): the same arithmetic
from autodistill.cli import main
from autodistill.distill.distiller import Distiller
step = Distiller._step
def killed_at(self, run, batches, index, _count=[0], **options):
    _count[0] += 1
    if _count[0] == {kill_at}:
        os.kill(os.getpid(), signal.SIGKILL)
    return step(self, run, batches, index, **options)
Distiller._step = killed_at
sys.exit(main(["distill", {config!r}, "--quiet"]))
"""


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_a_killed_distill_command_resumes_to_the_uninterrupted_student(workspace, tmp_path, capsys):
    import os
    import subprocess
    import sys

    from test_cli_distill import _config

    from autodistill.cli import main

    killed, whole = tmp_path / "killed", tmp_path / "whole"
    config = _config(workspace, killed)
    text = config.read_text().replace("  progress: false", "  progress: false\n  checkpoint_every_steps: 3")
    config.write_text(text)
    (tmp_path / "whole.yaml").write_text(text.replace(str(killed), str(whole)))

    def run(path, kill_at):  # a process of its own: the student's initial weights as a new process draws them
        return subprocess.run([sys.executable, "-c", KILLED.format(kill_at=kill_at, config=str(path))],
                              env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, timeout=300)

    assert run(tmp_path / "whole.yaml", kill_at=0).returncode == 0
    assert not (whole / "checkpoints").exists()  # a finished run leaves none
    assert run(config, kill_at=8).returncode == -9  # killed during its 8th step (of 4 + 6)
    assert latest(killed / "checkpoints").name == "step-000000006" and not (killed / "distillation.json").exists()
    capsys.readouterr()

    assert main(["distill", str(config), "--quiet"]) == 2  # without --resume: refused, nothing touched
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "add --resume to continue it" in error[0]
    assert latest(killed / "checkpoints").name == "step-000000006"

    other = tmp_path / "other.yaml"  # another plan, same output_dir: refused, nothing touched
    other.write_text(text.replace("learning_rate: 0.003", "learning_rate: 0.002"))
    assert main(["distill", str(other), "--quiet", "--resume"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "written by another plan or student architecture" in error[0]
    assert latest(killed / "checkpoints").name == "step-000000006" and not (killed / "distillation.json").exists()

    assert main(["distill", str(config), "--quiet", "--resume"]) == 0
    assert not (killed / "checkpoints").exists()
    resumed, reference = _weights(killed), _weights(whole)
    assert resumed.keys() == reference.keys()
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)


def test_resume_without_a_checkpoint_is_one_line_naming_the_fix(workspace, tmp_path, capsys):
    from test_cli_distill import _config

    from autodistill.cli import main

    assert main(["distill", str(_config(workspace, tmp_path / "new")), "--quiet", "--resume"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "holds no checkpoint" in error[0] and "run without --resume" in error[0]
    assert not (tmp_path / "new").exists()


def test_the_trainer_checkpoints_every_save_steps_and_resumes_from_checkpoint(tmp_path):
    """The Trainer's students have dropout 0.1 and its loader shuffles (seeded by args.seed)."""
    from test_trainer import KD_CONFIG, ToyTask, arguments, bert

    from autodistill.distill.trainer import CHECKPOINTS, DistillationTrainer

    def trainer(out, callbacks=()):
        args = arguments(out, max_steps=10, learning_rate=5e-3, save_steps=3, seed=11)
        made = DistillationTrainer(model=bert(seed=1), args=args, train_dataset=ToyTask(n=32))
        return made, lambda **kw: made.distill(distillation_config=KD_CONFIG, callbacks=callbacks,
                                                teacher_model=bert(hidden=32, layers=2, heads=4, seed=2), **kw)

    whole, distill = trainer(tmp_path / "whole")
    distill()
    assert not (tmp_path / "whole" / "out" / CHECKPOINTS).exists()  # removed once complete
    _, distill = trainer(tmp_path / "stopped", callbacks=[StopAt(7)])
    with pytest.raises(KeyboardInterrupt):
        distill()
    assert latest(tmp_path / "stopped" / "out" / CHECKPOINTS).name == "step-000000006"
    resumed, distill = trainer(tmp_path / "stopped")
    distill(resume_from_checkpoint=True)
    assert resumed.distillation_result.losses == whole.distillation_result.losses
    reference = whole.model.state_dict()
    assert all(torch.equal(t, reference[n]) for n, t in resumed.model.state_dict().items())
