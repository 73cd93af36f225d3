"""A student tokenizer other than the teacher's (`student.tokenizer`): what it rules out.

The teacher reads `data.tokenizer` (default: the teacher's own); the student reads
`student.tokenizer` (default: the teacher's). When they differ, the two models see other tokens of
the same text, so only sequence-level outputs compare: the logits of a classification or
regression head (logit KD, the task loss). Feature mappings (hidden states, attention maps) and
tasks scored per token (masked LM, token classification) have no token positions in common and
are refused before any work, and so is static int8 deployment (its calibration batches are the
teacher's tokens, shared by the teacher and every student).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

STUDENT_TOKENIZER = "student.tokenizer"
PER_TOKEN_LABELS = ("none", "tags")  # a task kind's `labels` when it scores every token


def reads_other_tokens(student_tokenizer: str | None, teacher_tokenizer: str | None) -> bool:
    """Whether the student has a tokenizer of its own (given, and not the teacher's location)."""
    return student_tokenizer is not None and student_tokenizer != teacher_tokenizer


def mapping_refusal(stages: Sequence[Any]) -> str | None:
    """Why a plan's first feature mapping cannot run across tokenizers (None: it has none)."""
    for stage in stages:
        for mapping in stage.mappings:
            return (f"stage '{stage.name}', mapping '{mapping.name}': {STUDENT_TOKENIZER} gives the student "
                    f"other tokens than the teacher's, so {mapping.student!r} and {mapping.teacher!r} have no "
                    "token positions in common; remove the feature mappings (logit KD and the task loss work "
                    f"across tokenizers) or remove {STUDENT_TOKENIZER}")
    return None


def task_refusal(task: str, labels: str) -> str | None:
    """Why a task kind (its `labels`) cannot take a student tokenizer of its own (None: it can)."""
    if labels not in PER_TOKEN_LABELS:
        return None
    return (f"{STUDENT_TOKENIZER}: task {task} scores every token, and the student's tokens are not the "
            "teacher's (no token-level logit KD can pair them); remove student.tokenizer, or distil a "
            "sequence-level task (sequence_classification, regression)")


def deployment_refusal(quantization: str) -> str | None:
    """Why a deployment (its quantization) cannot take a student tokenizer of its own (None: it can)."""
    if quantization != "static_int8":
        return None
    return (f"evaluation.deployment.quantization: static_int8 calibrates the teacher and every student on the "
            f"same training batches, the teacher's tokens, not {STUDENT_TOKENIZER}'s; use dynamic_int8 or none, "
            f"or remove {STUDENT_TOKENIZER}")
