"""A chosen student handed on: a `from_pretrained` folder with its tokenizer and model card,
optionally an ONNX graph checked against PyTorch.

    trial = select_trial(study, SelectionRule("fastest", min_retention=0.97))  # autodistill.study.selection
    export_student(study, trial, "students/fast", selected_by="fastest with retention >= 97%")
"""

from autodistill.export.student import ExportedStudent, completed_trial, export_student

__all__ = ["ExportedStudent", "completed_trial", "export_student"]
