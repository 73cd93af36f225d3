"""Data: labelled texts from files or the built-in corpus, splits, tokenised tensors."""

from autodistill.data.bbc_news import load_bbc_news
from autodistill.data.examples import LabelledTexts
from autodistill.data.paired import PairedInputs
from autodistill.data.splits import DEFAULT_FRACTIONS, split_indices, stratified_split
from autodistill.data.text_files import read_text_file
from autodistill.data.tokenized import TokenizedDataset, make_loader

__all__ = [
    "DEFAULT_FRACTIONS",
    "LabelledTexts",
    "PairedInputs",
    "TokenizedDataset",
    "load_bbc_news",
    "make_loader",
    "read_text_file",
    "split_indices",
    "stratified_split",
]
