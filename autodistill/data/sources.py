"""The train / validation / test splits a config names: the user's files or a built-in corpus."""

from __future__ import annotations

from dataclasses import dataclass

from autodistill.data.bbc_news import load_bbc_news
from autodistill.data.examples import LabelledTexts
from autodistill.data.splits import split_indices, stratified_split
from autodistill.data.text_files import read_text_file
from autodistill.data.token_files import read_tagged_file
from autodistill.errors import ConfigError


@dataclass(frozen=True)
class Splits:
    train: LabelledTexts
    validation: LabelledTexts
    test: LabelledTexts | None
    description: dict


def _limited(data: LabelledTexts, limit: int | None, seed: int) -> LabelledTexts:
    if limit is None or len(data) <= limit:
        return data
    fraction = limit / len(data)
    keep, _ = split_indices(data.labels, fractions=(fraction, 1 - fraction), seed=seed)
    return data.subset(keep)


def load_splits(section, *, labels: str = "classes") -> Splits:  # type: ignore[no-untyped-def]  # a DataSection
    """Read the files, or split the corpus (stratified, seeded); the description goes in the study.

    `labels`: "classes" (class names or ids), "targets" (numbers: regression), "tags" (a tag per
    word, JSON Lines: token classification) or "none" (masked
    LM: only the files' text column is read; the corpus keeps its classes, which then only
    stratify the split)."""
    if section.corpus is not None:
        if labels in ("targets", "tags"):
            raise ConfigError(f"data.corpus: the {section.corpus} corpus has a class per text, not the "
                              f"{'numbers' if labels == 'targets' else 'tags per word'} this task predicts; "
                              "give data.train_file")
        corpus = load_bbc_news()
        train, validation, test = stratified_split(corpus, fractions=section.fractions,
                                                   seed=section.split_seed)
        description = {"corpus": section.corpus, "fingerprint": corpus.fingerprint(),
                       "fractions": list(section.fractions), "split_seed": section.split_seed}
    else:
        def read(path: str, names: tuple[str, ...] | None = None) -> LabelledTexts:
            if labels == "tags":
                return read_tagged_file(path, text_column=section.text_column, label_column=section.label_column,
                                        label_names=list(names) if names else section.label_names)
            return read_text_file(path, text_column=section.text_column,
                                  label_column=None if labels == "none" else section.label_column,
                                  targets=labels == "targets",
                                  label_names=list(names) if names else section.label_names)

        train = read(section.train_file)
        if section.validation_file is None:
            raise ConfigError("data.validation_file is required: architectures are chosen on it")
        validation = read(section.validation_file, train.label_names)
        test = read(section.test_file, train.label_names) if section.test_file else None
        description = {"train_file": section.train_file, "validation_file": section.validation_file,
                       "test_file": section.test_file, "fingerprint": train.fingerprint()}
    seed = section.split_seed
    train, validation = _limited(train, section.limit, seed), _limited(validation, section.limit, seed)
    test = _limited(test, section.limit, seed) if test is not None else None
    description.update(sizes={"train": len(train), "validation": len(validation),
                              "test": len(test) if test is not None else 0},
                       label_names=list(train.label_names), limit=section.limit)
    return Splits(train, validation, test, description)
