"""One data set tokenised for the teacher and for a student with a tokenizer of its own.

With `student.tokenizer` set (a tokenizer other than the teacher's), every training example is
tokenised twice, once per tokenizer and once per split (not per step): `PairedInputs` joins the
two `TokenizedDataset`s of the same texts. An item holds the teacher's tensors under their own
names and the student's under `student_<name>` (`student_input_ids`, `student_attention_mask`,
...), which `DataAdaptor.student_inputs` passes to the student. Labels are the teacher's (both
tokenisations carry the same per-example labels; per-token labels cannot be paired).

Only sequence-level outputs can be compared across the two: the logits of a classification or
regression head. Token positions do not correspond (one word may be one teacher token and three
student tokens), so hidden-state and attention-map mappings are refused.
"""

from __future__ import annotations

import hashlib

import torch
from torch.utils.data import Dataset

from autodistill.data.tokenized import _TOKENIZER_OUTPUTS, TokenizedDataset
from autodistill.errors import ConfigError

STUDENT_PREFIX = "student_"  # the student's own inputs in a batch
STUDENT_FIELDS = tuple(STUDENT_PREFIX + name for name in _TOKENIZER_OUTPUTS)


class PairedInputs(Dataset):
    """`teacher` and `student` (the same texts and labels, tokenised by each one's tokenizer)."""

    def __init__(self, teacher: TokenizedDataset, student: TokenizedDataset) -> None:
        if len(teacher) != len(student) or not torch.equal(teacher.tensors["labels"], student.tensors["labels"]):
            raise ConfigError("PairedInputs joins one data set tokenised twice, but the teacher's and the "
                              f"student's differ ({len(teacher)} and {len(student)} examples, or other "
                              "labels); tokenise the same texts for both")
        if teacher.tensors["labels"].dim() > 1:
            raise ConfigError("student.tokenizer: the labels are per token, and the teacher's tokens are not "
                              "the student's; give the student the teacher's tokenizer (remove student.tokenizer)")
        self.teacher, self.student = teacher, student
        self.tensors: dict[str, torch.Tensor] = {
            **teacher.tensors,
            **{STUDENT_PREFIX + name: student.tensors[name] for name in _TOKENIZER_OUTPUTS
               if name in student.tensors}}

    def __len__(self) -> int:
        return len(self.teacher)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = self.teacher[index]
        item.update({name: self.tensors[name][index] for name in STUDENT_FIELDS if name in self.tensors})
        return item

    def fingerprint(self) -> str:
        """A hash of both tokenisations and the labels (the teacher's inputs alone:
        `teacher.fingerprint()`, which keys the teacher-output cache)."""
        digest = hashlib.sha256(self.teacher.fingerprint().encode())
        digest.update(self.student.fingerprint().encode())
        return digest.hexdigest()
