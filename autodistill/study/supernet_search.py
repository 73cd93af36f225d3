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

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial
from torch import nn

from autodistill.config.schema import SearchRunConfig, SearchSection
from autodistill.space import Architecture, SearchSpace
from autodistill.study import trials as attrs
from autodistill.study.pareto import pareto_front
from autodistill.study.search import AutoDistillation, SearchStopped

log = logging.getLogger(__name__)

PROXY_SUFFIX = "-proxy"
FIDELITY = "fidelity"            # trial and study attribute: "proxy" | "full"
PROXY_STUDY = "proxy_study"      # the full study's pointer to its proxy study
PROXY_TRIAL = "proxy_trial"      # a final trial's proxy twin (its number in the proxy study)
PROXY_ACCURACY = "proxy_accuracy"
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


@dataclass(frozen=True)
class SupernetSearch:
    """Runs the proxy and final phases on a trained supernet for one study."""

    config: SearchRunConfig
    search: SearchSection
    storage_url: str
    study_name: str
    output_dir: Path
    study_attrs: Mapping[str, Any]
    progress: bool

    def proxy_agent(self, *, builder: Callable[[Mapping[str, Any]], nn.Module],
                    score: Callable[[nn.Module], Mapping[str, Any]],
                    cost: Callable[[nn.Module], Mapping[str, Any]]) -> AutoDistillation:
        section = self.config.auto_distillation.supernet
        proxy = self.search.model_copy(update={"max_trials": section.proxy_trials})
        return AutoDistillation(
            builder, proxy, train_func=_untrained, eval_func=lambda m: {**score(m), FIDELITY: "proxy"},
            cost_func=cost, storage_url=self.storage_url, study_name=proxy_study_name(self.study_name),
            output_dir=self.output_dir, save_students=False,
            study_attrs={**self.study_attrs, FIDELITY: "proxy"}, progress=self.progress)

    def final_agent(self, proxy_study: optuna.Study, **functions: Any) -> AutoDistillation:
        """The study itself, with the proxy front's architectures queued (once: a resumed run
        queues only those it has not queued before) and max_trials set to their number."""
        section = self.config.auto_distillation.supernet
        front = pareto_front(proxy_study)
        finals = choose_finals(front, section.final_trials)
        agent = AutoDistillation(
            functions.pop("model_builder"), self.search, storage_url=self.storage_url,
            study_name=self.study_name, output_dir=self.output_dir,
            study_attrs={**self.study_attrs, FIDELITY: "full", PROXY_STUDY: proxy_study.study_name},
            progress=self.progress, **functions)
        queued = {Architecture.from_params(t.params).key() for t in agent.study.get_trials(deepcopy=False)
                  if PROXY_TRIAL in t.user_attrs and t.params}
        for trial in finals:
            architecture = Architecture.from_params(trial.params)
            if architecture.key() in queued:
                continue
            agent.study.enqueue_trial(architecture.to_dict(), user_attrs={
                attrs.PROPOSED_BY: PROPOSED_BY_FRONT, FIDELITY: "full", PROXY_TRIAL: trial.number,
                PROXY_ACCURACY: trial.user_attrs.get("accuracy")})
            queued.add(architecture.key())
        agent.config = agent.config.model_copy(update={"max_trials": len(queued)})
        log.info("final trials: %d architectures of the proxy front (%d on it) trained in full",
                 len(queued), len(front))
        return agent


def run_supernet_search(task: Any, config: SearchRunConfig, search: SearchSection, *, storage_url: str,
                        study_name: str, output_dir: Path, study_attrs: Mapping[str, Any], progress: bool,
                        prepare: Callable[[AutoDistillation], None]) -> AutoDistillation:
    """The three phases for the built-in task (`autodistill.study.task.DistillationTask`);
    `prepare` gives each study its teacher figures before its loop. Returns the final agent."""
    from autodistill.supernet import load_or_train_supernet

    section = config.auto_distillation.supernet
    space = SearchSpace.from_mapping(search.search_space, source="search.search_space")
    elastic = load_or_train_supernet(
        task.teacher, loader=task.train_loader, space=space, section=section, root=output_dir / "supernet",
        key=task.supernet_key(space_dimensions(space), section.key_settings()),
        importance_batches=task.importance_batches(section.importance_batches),
        teacher_cache=task.teacher_cache, quiet=task.quiet)
    runner = SupernetSearch(config, search, storage_url, study_name, output_dir, study_attrs, progress)
    proxy = runner.proxy_agent(builder=lambda architecture: task.extract(elastic, architecture),
                               score=task.validation_score, cost=task.cost)
    prepare(proxy)
    proxy.search_loop()
    if not pareto_front(proxy.study):
        raise SearchStopped(
            f"no proxy trial of study {proxy.study.study_name!r} completed, so no architecture can be "
            "trained in full; see its trials' failure, invalid or screened reasons (autodistill show "
            f"--study-name {proxy.study.study_name}) and relax search.constraints or the search space")
    final = runner.final_agent(
        proxy.study, model_builder=lambda architecture: task.build_from(elastic, architecture),
        train_func=task.train, eval_func=task.evaluate, cost_func=task.cost,
        early_stopping=config.auto_distillation.early_stopping, checkpoint_func=task.validation_accuracy,
        save_func=task.save)
    prepare(final)
    final.search_loop()
    return final


def _untrained(model: nn.Module) -> nn.Module:
    """A proxy trial's 'training': none; the supernet's weights are scored as they are."""
    return model


def space_dimensions(space: SearchSpace) -> dict[str, list[Any]]:
    """Every value each dimension can take (what the supernet must span)."""
    return {name: list(values) for name, values in space.grid().items()}


__all__ = ["FIDELITY", "PROXY_ACCURACY", "PROXY_STUDY", "PROXY_TRIAL", "SupernetSearch",
           "choose_finals", "proxy_study_name", "run_supernet_search", "space_dimensions"]
