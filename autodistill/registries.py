"""Every registry of names a config may give, at the ground floor: the built-ins' names are known
here, their code ("module:attr") is imported on first use (autodistill/registry.py).

    loss_types: [MSE, KL]          -> LOSSES           (autodistill/losses/builtin.py)
    student-target losses          -> TARGET_LOSSES
    optimizer: AdamW               -> OPTIMIZERS       (autodistill/distill/optimization.py)
    schedule: cosine               -> SCHEDULES
    search_algorithm: BO           -> ADVISORS         (autodistill/advisors/__init__.py)
    task: masked_lm                -> TASK_KINDS       (autodistill/tasks/)

So config checks every name, with the choices in its error, without importing torch or Optuna;
the engine resolves the same entry once, when it builds the thing. Users extend them as before
(`LOSSES.register("SmoothL1", fn)`, `ADVISORS.register(...)`, `TASK_KINDS.register(...)`), through
these objects or the modules that re-export them (`autodistill.LOSSES`, `autodistill.advisors`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autodistill.registry import Registry

_LOSSES = "autodistill.losses.builtin"
_OPTIMIZATION = "autodistill.distill.optimization"
_ADVISORS = "autodistill.advisors"
_TASKS = "autodistill.tasks.registry"

# fn(student, teacher, context) -> scalar tensor
LOSSES: Registry[Callable[..., Any]] = Registry("loss type", {
    "MSE": f"{_LOSSES}:mean_squared_error", "KL": f"{_LOSSES}:kl_divergence",
    "CE": f"{_LOSSES}:soft_cross_entropy", "cosine": f"{_LOSSES}:cosine_distance",
    "cos": f"{_LOSSES}:cosine_distance",  # seed 001's spelling
})
# fn(student_logits, labels, context) -> scalar tensor
TARGET_LOSSES: Registry[Callable[..., Any]] = Registry("student-target loss type", {
    "CE": f"{_LOSSES}:target_cross_entropy", "KL": f"{_LOSSES}:target_cross_entropy",
    "MSE": f"{_LOSSES}:target_mean_squared_error",
})
# fn(param_groups, OptimizerSpec, device) -> torch.optim.Optimizer
OPTIMIZERS: Registry[Callable[..., Any]] = Registry("optimizer", {
    "SGD": f"{_OPTIMIZATION}:sgd", "Adam": f"{_OPTIMIZATION}:adam", "AdamW": f"{_OPTIMIZATION}:adamw",
})
# fn(total_steps, warmup_steps, min_lr_ratio) -> (step -> learning-rate factor)
SCHEDULES: Registry[Callable[..., Any]] = Registry("schedule", {
    "constant": f"{_OPTIMIZATION}:constant", "linear": f"{_OPTIMIZATION}:linear",
    "cosine": f"{_OPTIMIZATION}:cosine",
})
# fn(*, space, seed, n_objectives, startup_trials) -> optuna.samplers.BaseSampler
ADVISORS: Registry[Callable[..., Any]] = Registry("search_algorithm", {
    "BO": f"{_ADVISORS}:gaussian_process", "TPE": f"{_ADVISORS}:tpe", "random": f"{_ADVISORS}:random_sampler",
    "grid": f"{_ADVISORS}:grid", "NSGA2": f"{_ADVISORS}:nsga2", "skopt": f"{_ADVISORS}:skopt",
})
# a TaskKind (autodistill/tasks/kind.py); its `name` is the name it is registered under
TASK_KINDS: Registry[Any] = Registry("task", {
    "sequence_classification": f"{_TASKS}:SEQUENCE_CLASSIFICATION", "masked_lm": f"{_TASKS}:MASKED_LM",
    "regression": f"{_TASKS}:REGRESSION", "token_classification": f"{_TASKS}:TOKEN_CLASSIFICATION",
})
