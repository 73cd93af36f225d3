"""The train / validation / test splits a config names: the user's files or a built-in corpus."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autodistill.data.bbc_news import load_bbc_news
from autodistill.data.examples import LabelledTexts
from autodistill.data.splits import split_indices, stratified_split
from autodistill.data.text_files import read_text_file
from autodistill.data.token_files import read_tagged_file
from autodistill.data.validation_sets import named_files, read_validation_sets
from autodistill.errors import ConfigError

if TYPE_CHECKING:
    from autodistill.config.schema import DataSection


@dataclass(frozen=True)
class Splits:
    train: LabelledTexts
    validation: LabelledTexts
    test: LabelledTexts | None
    description: dict
    # every validation set by name, `validation` (the one architectures are chosen on) first
    validations: dict[str, LabelledTexts] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.validations:
            object.__setattr__(self, "validations", {"validation": self.validation})


def _limited(data: LabelledTexts, limit: int | None, seed: int) -> LabelledTexts:
    if limit is None or len(data) <= limit:
        return data
    fraction = limit / len(data)
    keep, _ = split_indices(data.labels, fractions=(fraction, 1 - fraction), seed=seed)
    return data.subset(keep)


def load_splits(section: DataSection, *, labels: str = "classes") -> Splits:
    """Read the files, or split the corpus (stratified, seeded); the description goes in the study.

    `labels`: "classes" (class names or ids), "targets" (numbers: regression), "tags" (a tag per
    word, JSON Lines: token classification) or "none" (masked
    LM: only the files' text column is read; the corpus keeps its classes, which then only
    stratify the split)."""
    def read(path: str, names: tuple[str, ...] | None = None) -> LabelledTexts:
        if labels == "tags":
            return read_tagged_file(path, text_column=section.text_column, label_column=section.label_column,
                                    label_names=list(names) if names else section.label_names)
        return read_text_file(path, text_column=section.text_column,
                              label_column=None if labels == "none" else section.label_column,
                              targets=labels == "targets",
                              label_names=list(names) if names else section.label_names)

    test: LabelledTexts | None
    description: dict[str, Any]
    if section.train_file is None:  # DataSection holds one of train_file and corpus
        if labels in ("targets", "tags"):
            raise ConfigError(f"data.corpus: the {section.corpus} corpus has a class per text, not the "
                              f"{'numbers' if labels == 'targets' else 'tags per word'} this task predicts; "
                              "give data.train_file")
        corpus = load_bbc_news()
        train, validation, test = stratified_split(corpus, fractions=section.fractions,
                                                   seed=section.split_seed)
        validations = {"validation": validation}
        files = named_files(None, section.validation_files)  # the corpus's own split is "validation"
        description = {"corpus": section.corpus, "fingerprint": corpus.fingerprint(),
                       "fractions": list(section.fractions), "split_seed": section.split_seed}
        train_file = f"the {section.corpus} corpus"
    else:
        train, validations, train_file = read(section.train_file), {}, section.train_file
        files = named_files(section.validation_file, section.validation_files)
        if not files:
            raise ConfigError("data.validation_file (or data.validation_files) is required: "
                              "architectures are chosen on it")
        test = read(section.test_file, train.label_names) if section.test_file else None
        description = {"train_file": section.train_file, "validation_file": section.validation_file,
                       "test_file": section.test_file, "fingerprint": train.fingerprint()}
    classes = labels == "classes"  # read with their own names, then mapped onto training's classes
    validations.update(read_validation_sets(files, lambda path: read(path, None if classes else train.label_names),
                                            train, train_file=train_file, classes=classes))
    if section.validation_files:
        description["validation_files"] = dict(section.validation_files)
    seed = section.split_seed
    train = _limited(train, section.limit, seed)
    validations = {name: _limited(data, section.limit, seed) for name, data in validations.items()}
    test = _limited(test, section.limit, seed) if test is not None else None
    first = next(iter(validations.values()))
    description.update(sizes={"train": len(train), "validation": len(first),
                              "test": len(test) if test is not None else 0},
                       label_names=list(train.label_names), limit=section.limit)
    if len(validations) > 1:
        description["sizes"]["validation_sets"] = {name: len(data) for name, data in validations.items()}
    return Splits(train, first, test, description, validations)
