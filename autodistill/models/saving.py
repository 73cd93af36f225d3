"""Saving a student into a folder, whatever its kind."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

STATE_DICT_FILE = "student.pt"


def save_model(model: nn.Module, directory: str | Path) -> None:
    """`save_pretrained` where the model has it (Hugging Face), else its state dict as student.pt."""
    save_pretrained = getattr(model, "save_pretrained", None)
    if save_pretrained is not None:
        save_pretrained(directory)
    else:
        torch.save(model.state_dict(), Path(directory) / STATE_DICT_FILE)
