"""Early stopping inside a trial: stop distilling a student that will not reach the front.

During regular distillation the student's validation accuracy is measured every
`eval_every_steps` steps. The trial stops, recorded as pruned with its last accuracy, when
- Pareto rule: a finished trial whose student is at least as fast (latency measured before
  training) had already reached a higher accuracy, by `margin`, at the same step: this
  student is heading for a dominated point; or
- retention floor: after `min_steps`, its accuracy is below `retention_floor` times the
  teacher's.
Optuna's pruners are single-objective (`trial.report` refuses multi-objective studies), so
this rule is the project's own.
"""

from __future__ import annotations

from collections.abc import Callable

import optuna

from autodistill.config.schema import EarlyStoppingSection
from autodistill.distill.callbacks import DistillationCallback, DistillationControl, DistillationState
from autodistill.errors import AutodistillError
from autodistill.objectives import LATENCY
from autodistill.study.record import TrialRecord
from autodistill.study.trials import students


class TrialEarlyStopped(AutodistillError):
    """Raised from inside training to end a trial that trails the front."""

    def __init__(self, reason: str, accuracy: float, step: int) -> None:
        super().__init__(reason)
        self.reason, self.accuracy, self.step = reason, accuracy, step


class StopRule:
    """Decides at a checkpoint whether a trial should stop; '' means go on."""

    def __init__(self, section: EarlyStoppingSection, study: optuna.Study, *, latency_ms: float | None,
                 teacher_accuracy: float | None) -> None:
        self.section, self.study = section, study
        self.latency_ms, self.teacher_accuracy = latency_ms, teacher_accuracy

    def __call__(self, step: int, accuracy: float) -> str:
        s = self.section
        if s.retention_floor is not None and self.teacher_accuracy and step >= s.min_steps:
            floor = s.retention_floor * self.teacher_accuracy
            if accuracy < floor:
                return (f"accuracy {accuracy:.4f} at step {step} is below the retention floor "
                        f"{s.retention_floor:.2f} x teacher {self.teacher_accuracy:.4f} = {floor:.4f}")
        if s.pareto and self.latency_ms is not None and step >= s.min_steps:
            for other in students(self.study):
                record = TrialRecord.from_trial(other)
                theirs = (record.accuracy_curve or {}).get(str(step))
                faster = record.value(LATENCY)
                if theirs is None or faster is None:
                    continue
                if faster <= self.latency_ms and theirs >= accuracy + s.margin:
                    return (f"trails trial {other.number} at step {step}: accuracy {accuracy:.4f} vs "
                            f"{theirs:.4f}, and that student is as fast or faster ({faster:.3g} ms "
                            f"<= {self.latency_ms:.3g} ms)")
        return ""


class EarlyStopping(DistillationCallback):
    """Measures validation accuracy during regular distillation; stops by `rule`."""

    def __init__(self, *, evaluate: Callable[[], float], every: int, rule: StopRule,
                 on_checkpoint: Callable[[int, float], None]) -> None:
        self.evaluate, self.every, self.rule, self.on_checkpoint = evaluate, every, rule, on_checkpoint

    def on_step_end(self, state: DistillationState, control: DistillationControl) -> None:
        if state.stage is None or state.stage.kind != "regular" or state.step % self.every:
            return
        accuracy = self.evaluate()
        self.on_checkpoint(state.step, accuracy)
        reason = self.rule(state.step, accuracy)
        if reason:
            raise TrialEarlyStopped(reason, accuracy, state.step)
