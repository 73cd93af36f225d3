"""The built-in task kinds, one object each, that TASK_KINDS (autodistill/registries.py) names;
which task a model class implies is config's (autodistill/config/tasks.py), re-exported here.

Users add a kind the way the built-ins are added: `TASK_KINDS.register("my_task", MyKind())`.
"""

from __future__ import annotations

from autodistill.config.tasks import DEFAULT_TASK, check_task_fits, infer_task, kind_of_class
from autodistill.registries import TASK_KINDS
from autodistill.tasks.masked_lm import MaskedLM
from autodistill.tasks.regression import Regression
from autodistill.tasks.sequence_classification import SequenceClassification
from autodistill.tasks.token_classification import TokenClassification

__all__ = ["DEFAULT_TASK", "MASKED_LM", "REGRESSION", "SEQUENCE_CLASSIFICATION", "TASK_KINDS",
           "TOKEN_CLASSIFICATION", "check_task_fits", "infer_task", "kind_of_class"]

SEQUENCE_CLASSIFICATION = SequenceClassification()
MASKED_LM = MaskedLM()
REGRESSION = Regression()
TOKEN_CLASSIFICATION = TokenClassification()
