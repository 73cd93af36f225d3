"""TensorBoard event files of a distillation run (`logging: {tensorboard: true}` or a folder).

    Distiller(teacher, student, plan, callbacks=[TensorBoardLogger("runs/kd")])

Scalars, against the global step, every `log_every_steps` steps: `<stage>/loss`, `<stage>/<term>`
(each loss term), `<stage>/learning_rate`, `<stage>/grad_norm`, `<stage>/steps_per_second`,
`<stage>/epoch`; after each evaluation `eval/<set>/<metric>`. Needs the `tensorboard` package
(`pip install 'autodistill-nas[tensorboard]'`); without it the run stops before training, saying so.
"""

from __future__ import annotations

import re
from pathlib import Path

from autodistill.distill.callbacks import DistillationCallback, DistillationControl, DistillationState
from autodistill.errors import ConfigError

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-/]+")


def _tag(*parts: str) -> str:
    return "/".join(_UNSAFE.sub("_", p).strip("_") for p in parts)


def tensorboard_missing() -> str | None:
    """Why TensorBoard logging cannot run here (the package is missing), with the fix; None if it can."""
    try:
        import torch.utils.tensorboard  # noqa: F401  (needs the tensorboard package)
    except ImportError:
        return ("TensorBoard logging needs the tensorboard package, which is not installed: "
                "pip install 'autodistill-nas[tensorboard]', or remove logging.tensorboard")
    return None


def summary_writer(directory: str | Path):  # -> torch.utils.tensorboard.SummaryWriter
    missing = tensorboard_missing()
    if missing is not None:
        raise ConfigError(missing)
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(directory))


class TensorBoardLogger(DistillationCallback):
    """Writes a run's scalars into `directory` (every `every` steps; the Distiller passes its plan's
    log_every_steps)."""

    def __init__(self, directory: str | Path, *, every: int = 1) -> None:
        self.writer = summary_writer(directory)
        self.every = every

    def on_step_end(self, state: DistillationState, control: DistillationControl) -> None:
        if state.global_step % self.every or state.stage is None:
            return
        stage, step, add = state.stage.name, state.global_step, self.writer.add_scalar
        add(_tag(stage, "loss"), state.loss, step)
        for term, value in state.terms.items():
            add(_tag(stage, term), value, step)
        add(_tag(stage, "learning_rate"), state.learning_rate, step)
        if state.grad_norm is not None:
            add(_tag(stage, "grad_norm"), state.grad_norm, step)
        add(_tag(stage, "steps_per_second"), state.steps_per_second, step)
        add(_tag(stage, "epoch"), state.epoch, step)

    def on_evaluate(self, state: DistillationState, control: DistillationControl) -> None:
        for name, metrics in state.metrics.items():
            for metric, value in metrics.items():
                self.writer.add_scalar(_tag("eval", name, metric), value, state.global_step)

    def on_stage_end(self, state: DistillationState, control: DistillationControl) -> None:
        self.writer.flush()

    def on_fit_end(self, state: DistillationState, control: DistillationControl) -> None:
        self.writer.close()
