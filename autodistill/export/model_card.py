"""The model card (`README.md`) of an exported student: what it is, how good, how it was made.

Everything in it is read from the study: the trial's architecture and measurements, the
teacher's measurements (the reference for speed-up and retention), the teacher's location,
the data, and the commands that made the student and its export.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optuna.trial import FrozenTrial

from autodistill.export.onnx import OnnxCheck, QuantizedCheck
from autodistill.objectives import (
    ACCURACY,
    EAGER_ACCURACY,
    EAGER_LATENCY,
    LATENCY,
    LATENCY_P90,
    PARAMS,
    PERPLEXITY,
    SIZE,
    TEST_ACCURACY,
    TEST_PERPLEXITY,
)
from autodistill.study.pareto import retention, speedup
from autodistill.study.record import TrialRecord
from autodistill.tables import markdown_table
from autodistill.tasks import kind_of_class

MODEL_CARD = "README.md"
CARD_METRICS = (ACCURACY, TEST_ACCURACY, LATENCY, LATENCY_P90, PARAMS, SIZE)
TASK_METRICS = (PERPLEXITY, TEST_PERPLEXITY)  # rows of their own where the student or teacher records them
FILE_NOTES = {
    "config.json": "the architecture (transformers config)",
    "model.safetensors": "the weights",
    "tokenizer.json": "the tokenizer",
    "tokenizer_config.json": "the tokenizer's settings",
    "vocab.txt": "the tokenizer's vocabulary",
    "matchers.pt": "the feature matchers of flash distillation; not needed for inference",
    "model.onnx": "the ONNX graph",
    "model.dynamic_int8.onnx": "the ONNX graph, int8 (dynamic quantisation)",
    "model.static_int8.onnx": "the ONNX graph, int8 (static quantisation, calibrated on training batches)",
    MODEL_CARD: "this card",
}


@dataclass(frozen=True)
class CardFacts:
    """What the card says beyond the trial's own record."""

    study_name: str
    selected_by: str                      # "--trial 7" or "fastest with retention >= 97%"
    teacher: Mapping[str, Any]            # the study's teacher measurements ({} when unknown)
    teacher_model: str | None
    data: Mapping[str, Any] | None
    model_class: str | None               # config.json's `architectures[0]`
    commands: Sequence[tuple[str, str]]   # (what it did, the command line)
    files: Sequence[str]
    onnx: OnnxCheck | None = None
    quantized: QuantizedCheck | None = None


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _test_retention(figures: Mapping[str, Any], teacher: Mapping[str, Any]) -> float | None:
    student, reference = TEST_ACCURACY.value(figures), TEST_ACCURACY.value(teacher)
    return None if student is None or not reference else student / reference


def metrics_rows(record: TrialRecord, teacher: Mapping[str, Any]) -> list[list[str]]:
    """(metric, student, teacher) rows; the teacher's column is the reference."""
    has_teacher, figures = bool(teacher), record.figures
    shown = [*CARD_METRICS, *(m for m in TASK_METRICS if m.value(figures) is not None or m.value(teacher) is not None)]
    return [
        *([m.title, m.format(m.value(figures)), m.format(m.value(teacher))] for m in shown),
        ["speed-up vs the teacher", _times(speedup(figures, teacher)), _times(1.0 if has_teacher else None)],
        ["retention (validation accuracy)", _percent(retention(figures, teacher)),
         _percent(1.0 if has_teacher else None)],
        ["retention (test accuracy)", _percent(_test_retention(figures, teacher)),
         _percent(1.0 if TEST_ACCURACY.value(teacher) else None)],
        ["training time (s)", "-" if record.train_seconds is None else f"{record.train_seconds:.3g}", "-"],
    ]


def _data_lines(data: Mapping[str, Any]) -> list[str]:
    lines = [f"- {key.replace('_', ' ')}: `{data[key]}`"
             for key in ("train_file", "validation_file", "test_file") if data.get(key)]
    sizes = data.get("sizes") or {}
    if sizes:
        lines.append("- examples: " + ", ".join(f"{k} {v}" for k, v in sizes.items() if v is not None))
    if data.get("label_names"):
        lines.append("- labels (in id order): " + ", ".join(f"`{n}`" for n in data["label_names"]))
    if data.get("fingerprint"):
        lines.append(f"- fingerprint: `{data['fingerprint']}`")
    return lines


def _deployment(record: TrialRecord, quantized: QuantizedCheck | None) -> str:
    """The runtime the metrics above were measured in, and the int8 graph's accuracies."""
    deployed = record.value(EAGER_ACCURACY) is not None
    lines = [("Runtime of the metrics above: ONNX Runtime (the search's `evaluation.deployment`: its graph "
              f"in this folder); the eager PyTorch module scored {EAGER_ACCURACY.format(record.value(EAGER_ACCURACY))} "
              f"validation accuracy at {EAGER_LATENCY.format(record.value(EAGER_LATENCY))} ms.")
             if deployed else "Runtime of the metrics above: PyTorch, eager fp32."]
    if quantized is not None:
        lines.append(
            f"`{quantized.path.name}`: ONNX Runtime, quantisation {quantized.quantization} (ONNX Runtime's "
            f"own tools). Validation accuracy: {quantized.accuracy:.4g} re-measured from this file"
            + (f" (the search recorded {quantized.recorded:.4g})" if quantized.recorded is not None
               else " (the search measured another runtime)")
            + (f"; eager PyTorch {quantized.eager_accuracy:.4g}." if quantized.eager_accuracy is not None else "."))
    return "\n\n".join(lines)


def model_card(trial: FrozenTrial, facts: CardFacts) -> str:
    record = TrialRecord.from_trial(trial)
    kind = kind_of_class(facts.model_class) if facts.model_class else None  # the export class per task
    front = ["---", "library_name: transformers",
             *([f"pipeline_tag: {kind.pipeline_tag}"] if kind is not None and kind.pipeline_tag else []),
             "tags: [autodistill, knowledge-distillation]", "---"]
    architecture = record.architecture or {}
    parts = [
        "\n".join(front),
        f"# Student of trial {trial.number} (study `{facts.study_name}`)",
        (f"A student distilled from its teacher by autodistill's architecture search, chosen by "
         f"{facts.selected_by}."),
        "## Architecture",
        (f"Model class: `{facts.model_class}`.\n\n" if facts.model_class else "")
        + (markdown_table(["key", "value"], [[k, str(v)] for k, v in architecture.items()])
           if architecture else "Not recorded."),
        "## Metrics",
        ("Measured by the search: accuracy on the validation split (which chose the architecture) "
         "and on the test split (reported only); latency as a benchmark, timed call for call "
         "with the teacher: p50 is the student's time at the teacher's latency in the teacher "
         "column (the teacher's over the speed-up, so a busy machine does not move it), p90 the "
         "tail as measured. Speed-up and retention are against the teacher."),
        markdown_table(["metric", "student", "teacher"], metrics_rows(record, facts.teacher)),
        "## Teacher",
        f"`{facts.teacher_model}`" if facts.teacher_model else "Not recorded.",
        "## Data",
        "\n".join(_data_lines(facts.data)) if facts.data else "Not recorded.",
        "## How it was made",
        "\n".join(f"- {what}: `{command}`" for what, command in facts.commands)
        if facts.commands else "Not recorded.",
        "## Files",
        "\n".join(f"- `{name}`" + (f": {FILE_NOTES[name]}" if name in FILE_NOTES else "")
                  for name in facts.files),
    ]
    if facts.onnx is not None:
        parts += ["## ONNX",
                  (f"`{facts.onnx.path.name}` (inputs `input_ids`, `attention_mask`; output `logits`; "
                   f"dynamic batch and sequence axes). ONNX Runtime's logits matched PyTorch's within "
                   f"{facts.onnx.max_abs_diff:.2g} on a batch of {facts.onnx.batch_size} x "
                   f"{facts.onnx.sequence_length} tokens.")]
    parts += ["## Deployment", _deployment(record, facts.quantized)]
    parts += [
        "## Use",
        "```python\n"
        f"from transformers import {kind.export_class}, AutoTokenizer\n\n"
        f"model = {kind.export_class}.from_pretrained(\"path/to/this/folder\")\n"
        "tokenizer = AutoTokenizer.from_pretrained(\"path/to/this/folder\")\n"
        "```" if kind is not None else
        "Load it with the transformers class named above, `from_pretrained(\"path/to/this/folder\")`.",
    ]
    return "\n\n".join(parts) + "\n"
