"""`model_modes`: teachers in eval mode, students in train mode, each module's own flag back after."""

from __future__ import annotations

import pytest
from torch import nn

from autodistill.modes import model_modes


def test_modes_are_set_for_the_block_and_every_module_restored_even_on_an_exception():
    teacher, student = nn.Sequential(nn.Linear(2, 2), nn.Dropout()), nn.Sequential(nn.Linear(2, 2), nn.Dropout())
    teacher.train()
    student.eval()
    student[1].train()  # a submodule with its own mode (e.g. a frozen norm kept in eval elsewhere)
    with pytest.raises(RuntimeError), model_modes(eval=[teacher, None], train=[student]):
        assert not teacher.training and not teacher[1].training
        assert student.training and student[0].training and student[1].training
        raise RuntimeError("inside")
    assert teacher.training and teacher[1].training
    assert not student.training and not student[0].training and student[1].training
