"""Models: classes by name, teacher loading, the built-in student builder."""

from autodistill.models.builders import build_student, student_config
from autodistill.models.classes import model_class
from autodistill.models.teacher import load_pretrained

__all__ = ["build_student", "load_pretrained", "model_class", "student_config"]
