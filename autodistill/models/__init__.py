"""Models: classes by name, teacher loading, the built-in student builder."""

from autodistill.models.builders import build_student, student_config
from autodistill.models.classes import model_class
from autodistill.models.init_from_teacher import InitReport, init_from_teacher
from autodistill.models.teacher import load_pretrained

__all__ = ["InitReport", "build_student", "init_from_teacher", "load_pretrained", "model_class",
           "student_config"]
