"""Data: labelled texts from files or the built-in corpus, splits, tokenised tensors.

The names load on first use (PEP 562, as autodistill/__init__.py's do): importing one module of
data/ (`autodistill.data.examples`, which config's task check reaches) imports no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autodistill.lazy_exports import lazy_exports

# public name -> the module that defines it
_EXPORTS = {
    "load_bbc_news": "autodistill.data.bbc_news",
    "LabelledTexts": "autodistill.data.examples",
    "PairedInputs": "autodistill.data.paired",
    "DEFAULT_FRACTIONS": "autodistill.data.splits",
    "split_indices": "autodistill.data.splits",
    "stratified_split": "autodistill.data.splits",
    "read_text_file": "autodistill.data.text_files",
    "TokenizedDataset": "autodistill.data.tokenized",
    "make_loader": "autodistill.data.tokenized",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # for type checkers and editors: the same names, imported eagerly
    from autodistill.data.bbc_news import load_bbc_news
    from autodistill.data.examples import LabelledTexts
    from autodistill.data.paired import PairedInputs
    from autodistill.data.splits import DEFAULT_FRACTIONS, split_indices, stratified_split
    from autodistill.data.text_files import read_text_file
    from autodistill.data.tokenized import TokenizedDataset, make_loader
