"""The supernet strategy (`search.strategy: supernet`): train one weight-sharing network,
score many architectures by slicing it, train only the front.

Three phases, each of which resumes where a killed run stopped:

1. **Supernet.** `autodistill.supernet.load_or_train_supernet`: a copy of the teacher,
   its heads and FFN neurons reordered by importance, trained once by the sandwich rule,
   saved under `<output_dir>/supernet/<key>/`. The key hashes the teacher's weights, the
   training data, the search space and the supernet settings, so a second run, a resumed
   study and every worker reuse it; a killed training resumes from its last checkpoint.
2. **Proxy trials** (fidelity `proxy`), in a study of their own, `<study>-proxy`, in the
   same storage: the advisor proposes an architecture, it is extracted from the supernet
   (no training), scored by validation accuracy and the paired latency benchmark, and told
   to the advisor, so BO, TPE, NSGA-II and skopt learn from every one of them. Screening
   and constraints act as in a per-trial search. No student is saved.
3. **Final trials** (fidelity `full`), in the study itself: the proxy Pareto front, at
   most `supernet.final_trials` architectures spread evenly along it, is queued and each is
   trained at full fidelity (flash + regular distillation as configured) starting from its
   supernet weights. These are the study's result: its Pareto table, `pareto.json`,
   `show`, `export`, the report and the dashboard's main study hold full-fidelity trials
   only. Each records `proxy_trial` and `proxy_accuracy`, its proxy twin.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from torch import nn

from autodistill.config.plan import DistillationPlan
from autodistill.config.schema import AutoDistillationSection, SearchRunConfig, SearchSection
from autodistill.distill.distiller import Distiller
from autodistill.evaluation.linear_probe import refit_accuracy
from autodistill.objectives import ACCURACY, EAGER_ACCURACY
from autodistill.space import Architecture, SearchSpace
from autodistill.study import trials as attrs
from autodistill.study.pareto import pareto_front
from autodistill.study.protocol import TaskWithFunctions, TrainedStudent
from autodistill.study.record import (
    FIDELITY,
    PROXY_ACCURACY,
    PROXY_STUDY,
    PROXY_TRIAL,
    StudyRecord,
    TrialRecord,
    enqueue,
)
from autodistill.study.search import AutoDistillation, SearchStopped
from autodistill.study.task import DistillationTask

log = logging.getLogger(__name__)

PROXY_FINE_TUNE_STEPS = "proxy_fine_tune_steps"  # a proxy trial's figure: the steps its slice was trained
PROXY_HEAD = "proxy_head"  # a proxy trial's figure: how it was scored (supernet.proxy_head)
REFIT_EXAMPLES = 512  # proxy_head refit: the first training examples its linear classifier is fitted on
PROXY_SUFFIX = "-proxy"
PROPOSED_BY_FRONT = "supernet (proxy Pareto front)"


def proxy_study_name(study_name: str) -> str:
    return f"{study_name}{PROXY_SUFFIX}"


def choose_finals(front: Sequence[FrozenTrial], count: int) -> list[FrozenTrial]:
    """At most `count` trials of a front sorted best first on objective 0, spread evenly along
    it (both ends kept), so the final trials cover the trade-off rather than one end of it."""
    if count >= len(front):
        return list(front)
    if count == 1:
        return [front[0]]
    picks = sorted({round(i * (len(front) - 1) / (count - 1)) for i in range(count)})
    return [front[i] for i in picks]


class ProxyTask:
    """A proxy trial's task: the architecture sliced out of the supernet and scored (validation
    accuracy, the built-in task's paired latency); nothing saved. With `fine_tune_steps`, the
    slice is first trained that many steps of the regular distillation (the teacher cache serves
    it), on the same first training batches for every architecture; 0 scores it as sliced. With
    `proxy_head="refit"`, its accuracy is that of a linear classifier fitted on the features its
    classification head reads over the first `REFIT_EXAMPLES` training examples (the same for
    every architecture), rather than the sliced head's."""

    measures_cost = True
    stops_early = False

    def __init__(self, task: DistillationTask, elastic: Any, *, fine_tune_steps: int = 0,
                 proxy_head: str = "refit") -> None:
        self.task, self.elastic, self.fine_tune_steps, self.proxy_head = task, elastic, fine_tune_steps, proxy_head
        self._fine_tune: tuple[DistillationPlan, list[Any]] | None = None
        if fine_tune_steps:  # built once: every proxy trains on the same plan and batches
            self._fine_tune = (proxy_fine_tune_plan(task.config.auto_distillation, fine_tune_steps),
                               list(itertools.islice(task._train_loader(), fine_tune_steps)))
        self._refit_batches: list[Any] = []
        if proxy_head == "refit":  # built once: every proxy's classifier is fitted on the same examples
            count = math.ceil(REFIT_EXAMPLES / task.config.data.batch_size)
            self._refit_batches = list(itertools.islice(task._train_loader(), count))

    def check_architecture(self, architecture: Architecture) -> None:
        """InvalidArchitecture when no student can have `architecture` (the search draws only valid ones)."""
        self.task.check_architecture(architecture)

    def build(self, architecture: Architecture) -> nn.Module:
        self.check_architecture(architecture)
        return self.elastic.extract(architecture)

    def cost(self, model: nn.Module) -> Mapping[str, Any]:
        """The built-in task's: with evaluation.deployment on, the deployed graph's latency, paired with
        the deployed teacher (the eager slice's as `eager_*`), as a final trial's. Without a proxy
        fine-tune these weights are the ones scored, so the graph timed is shipped for `evaluate`
        (exported and quantised once)."""
        if self.task.deployer is not None and not self.fine_tune_steps:
            self.task.deployer.shipped(model)
        return self.task.cost(model)

    def train(self, model: nn.Module, callbacks: Sequence[Any] = ()) -> TrainedStudent:
        """The slice as it is, or after `fine_tune_steps` steps of the regular distillation."""
        if self._fine_tune is not None:
            plan, batches = self._fine_tune
            Distiller(self.task.teacher, model, plan, teacher_cache=self.task.teacher_cache, quiet=True).fit(batches)
        return TrainedStudent(model)

    def evaluate(self, model: nn.Module) -> Mapping[str, Any]:
        """Validation accuracy only (the test split stays unseen until the final trials), with the
        proxy's fidelity: `proxy`, trained `proxy_fine_tune_steps` steps, scored by `proxy_head`.
        With evaluation.deployment on, it is the deployed graph's (exported and quantised as
        trained, scored in its runtime, as a final trial's is; `cost` timed the deployed graph too)
        and the eager slice's stays beside it as `eager_accuracy`; `refit` scores the eager slice
        only (a deployed graph has no classifier module to read)."""
        figures = {FIDELITY: "proxy", PROXY_FINE_TUNE_STEPS: self.fine_tune_steps, PROXY_HEAD: self.proxy_head}
        if self.proxy_head == "refit":
            return {ACCURACY.key: refit_accuracy(model, self._refit_batches, self.task.validation_loader), **figures}
        eager = self.task.validation_accuracy(model)
        if self.task.deployer is None:
            return {ACCURACY.key: eager, **figures}
        deployed = self.task.deployer.shipped(model)  # cost's graph, or the fine-tuned weights' own
        return {ACCURACY.key: self.task.validation_accuracy(deployed), EAGER_ACCURACY.key: eager, **figures}

    def checkpoint_score(self, model: nn.Module) -> float:
        return self.task.validation_accuracy(model)

    def save(self, student: TrainedStudent, directory: Path) -> None:  # pragma: no cover - never saved
        raise NotImplementedError("proxy trials keep no student")

    def teacher_figures(self, recorded: Mapping[str, Any] | None) -> Mapping[str, Any]:
        return self.task.teacher_figures(recorded)


def proxy_fine_tune_plan(section: AutoDistillationSection, steps: int) -> DistillationPlan:
    """The regular distillation stage alone, `steps` steps long, without checkpoints, evaluation,
    progress bars or TensorBoard: a proxy's fine-tune (its schedule spans those steps)."""
    plan = section.model_copy(update={"flash_distillation": None}).plan()
    regular = [stage for stage in plan.stages if stage.kind == "regular"]
    return replace(plan, stages=(replace(regular[0], name="proxy fine-tune", train_steps=steps, epochs=None),),
                   progress=False, checkpoint_every_steps=0, eval_every_steps=0, tensorboard=False)


class FinalTask(TaskWithFunctions):
    """A final trial's task: the built-in task, its students starting from their supernet weights
    (instead of init_from_teacher's slices of the teacher)."""

    def __init__(self, task: DistillationTask, elastic: Any) -> None:
        super().__init__(task, model_builder=self._from_supernet)
        self.task, self.elastic = task, elastic

    def _from_supernet(self, architecture: Mapping[str, Any]) -> nn.Module:
        student = self.task.fresh(architecture)
        student.load_state_dict(self.elastic.extract(architecture).state_dict())
        return student


def queue_finals(study: optuna.Study, proxy_study: optuna.Study, count: int) -> int:
    """Queue the proxy front's architectures (at most `count`, spread along it) in the full study,
    each once (a resumed run queues only what it has not queued before); how many it holds."""
    front = pareto_front(proxy_study)
    queued = {Architecture.from_params(t.params).key() for t in study.get_trials(deepcopy=False)
              if TrialRecord.from_trial(t).proxy_trial is not None and t.params}
    for trial in choose_finals(front, count):
        architecture = Architecture.from_params(trial.params)
        if architecture.key() in queued:
            continue
        enqueue(study, architecture.to_dict(), TrialRecord(
            proposed_by=PROPOSED_BY_FRONT, fidelity="full", proxy_trial=trial.number,
            proxy_accuracy=TrialRecord.from_trial(trial).value(ACCURACY)))
        queued.add(architecture.key())
    log.info("final trials: %d architectures of the proxy front (%d on it) trained in full", len(queued), len(front))
    return len(queued)


def proxy_budget(proxy: AutoDistillation, proxy_trials: int) -> int:
    """`proxy_trials`, at most the valid architectures of a finite space (those the constraints
    screen out cost none, so the phase also ends once every valid one is settled)."""
    valid, size = proxy.valid_count(), proxy.search_space.size()
    if valid is None:
        return proxy_trials
    budget = min(proxy_trials, valid)
    log.info("proxy budget: %d architectures (supernet.proxy_trials %d; the space holds %d, %d of them "
             "valid; those the constraints screen out cost none and the phase ends once every valid one "
             "is scored or screened)", budget, proxy_trials, size, valid)
    return budget


def proxy_summary(trials: Sequence[FrozenTrial]) -> str:
    """How the proxy phase spent its proposals: architectures scored, proposals ruled out
    (impossible, or screened by the constraints) and repeats (both free)."""
    scored = sum(t.state == TrialState.COMPLETE and attrs.trained(t) for t in trials)
    ruled_out = sum(map(attrs.ruled_out, trials))
    repeats = sum(t.state == TrialState.COMPLETE and not attrs.trained(t) for t in trials)
    return (f"{len(trials)} proposals: {scored} architectures scored, {ruled_out} ruled out (impossible or "
            f"screened by the constraints), {repeats} repeats")


def run_supernet_search(task: DistillationTask, config: SearchRunConfig, search: SearchSection, *,
                        storage_url: str, study_name: str, output_dir: Path, study_record: StudyRecord,
                        progress: bool) -> AutoDistillation:
    """The three phases for the built-in task; returns the final (full-fidelity) study's agent."""
    from autodistill.supernet import load_or_train_supernet

    section = config.auto_distillation.supernet
    space = SearchSpace.from_mapping(search.search_space, source="search.search_space")
    elastic = load_or_train_supernet(
        task.teacher, loader=task.train_loader, space=space, section=section, root=output_dir / "supernet",
        key=task.supernet_key(space_dimensions(space), section.key_settings()),
        importance_batches=task.importance_batches(section.importance_batches),
        teacher_cache=task.teacher_cache, quiet=task.quiet)
    proxy = AutoDistillation(ProxyTask(task, elastic, fine_tune_steps=section.proxy_fine_tune_steps,
                                       proxy_head=section.proxy_head),
                             search.overridden(max_trials=section.proxy_trials),
                             storage_url=storage_url, study_name=proxy_study_name(study_name),
                             output_dir=output_dir, save_students=False,
                             study_record=replace(study_record, fidelity="proxy"), progress=progress)
    proxy.config = search.overridden(max_trials=proxy_budget(proxy, section.proxy_trials))
    proxy.search_loop()
    log.info("proxy trials: %s", proxy_summary(proxy.study.get_trials(deepcopy=False)))
    if not pareto_front(proxy.study):
        raise SearchStopped(
            f"no proxy trial of study {proxy.study.study_name!r} completed, so no architecture can be "
            "trained in full; see its trials' failure, invalid or screened reasons (autodistill show "
            f"--study-name {proxy.study.study_name}) and relax search.constraints or the search space")
    final = AutoDistillation(FinalTask(task, elastic), search, storage_url=storage_url, study_name=study_name,
                             output_dir=output_dir, early_stopping=config.auto_distillation.early_stopping,
                             study_record=replace(study_record, fidelity="full",
                                                proxy_study=proxy.study.study_name),
                             progress=progress)
    final.config = search.overridden(max_trials=queue_finals(final.study, proxy.study, section.final_trials))
    final.search_loop()
    return final


def space_dimensions(space: SearchSpace) -> dict[str, list[Any]]:
    """Every value each dimension can take (what the supernet must span); a continuous range is
    a ConfigError naming it."""
    from autodistill.supernet.sandwich import space_grid

    return {name: list(values) for name, values in space_grid(space).items()}


__all__ = ["FIDELITY", "PROXY_ACCURACY", "PROXY_FINE_TUNE_STEPS", "PROXY_HEAD", "PROXY_STUDY", "PROXY_TRIAL",
           "REFIT_EXAMPLES", "FinalTask", "ProxyTask", "choose_finals", "proxy_budget",
           "proxy_fine_tune_plan", "proxy_study_name", "proxy_summary", "queue_finals",
           "run_supernet_search", "space_dimensions"]
