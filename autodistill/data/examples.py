"""Labelled texts: the in-memory form of every text-classification data set."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from autodistill.errors import ConfigError

UNLABELLED = "text"  # the one class name of texts read without labels


@dataclass(frozen=True)
class LabelledTexts:
    """Texts with integer class ids and the name of each class.

    `labels[i]` is the id of `texts[i]`; an id indexes `label_names`. Any sequences
    passed in are stored as tuples, so an instance never changes.
    """

    texts: tuple[str, ...]
    labels: tuple[int, ...]
    label_names: tuple[str, ...]
    targets: tuple[float, ...] | None = None  # one number per text (regression), else None
    # one tag id per word (token classification; the words are the text split at spaces), else None
    tags: tuple[tuple[int, ...], ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "texts", tuple(self.texts))
        if self.targets is not None:
            object.__setattr__(self, "targets", tuple(float(t) for t in self.targets))
            if len(self.targets) != len(self.texts):
                raise ConfigError(f"texts and targets must have the same length, but got {len(self.texts)} "
                                  f"texts and {len(self.targets)} targets; give one target per text")
        if self.tags is not None:
            object.__setattr__(self, "tags", tuple(tuple(int(t) for t in row) for row in self.tags))
            if len(self.tags) != len(self.texts):
                raise ConfigError(f"texts and tags must have the same length, but got {len(self.texts)} "
                                  f"texts and {len(self.tags)} tag lists; give one tag list per text")
        object.__setattr__(self, "labels", tuple(int(label) for label in self.labels))
        object.__setattr__(self, "label_names", tuple(self.label_names))
        if len(self.texts) != len(self.labels):
            raise ConfigError(
                f"texts and labels must have the same length, but got {len(self.texts)} texts "
                f"and {len(self.labels)} labels; give one label per text"
            )
        if not self.label_names:
            raise ConfigError("label_names must name at least one class, but got none")
        if len(set(self.label_names)) != len(self.label_names):
            raise ConfigError(
                f"label_names must be unique, but got {list(self.label_names)}; remove the repeats"
            )
        bad = [label for label in self.labels if not 0 <= label < len(self.label_names)]
        if bad:
            raise ConfigError(
                f"every label must be an id in 0..{len(self.label_names) - 1} "
                f"(one per name in {list(self.label_names)}), but got {bad[0]}"
            )

    @classmethod
    def unlabelled(cls, texts: Iterable[str]) -> LabelledTexts:
        """Texts without labels (masked LM): every text in the one class `UNLABELLED`."""
        texts = tuple(texts)
        return cls(texts=texts, labels=(0,) * len(texts), label_names=(UNLABELLED,))

    @classmethod
    def with_targets(cls, texts: Iterable[str], targets: Iterable[float]) -> LabelledTexts:
        """Texts with one number each (regression), in the one class `UNLABELLED`."""
        texts = tuple(texts)
        return cls(texts=texts, labels=(0,) * len(texts), label_names=(UNLABELLED,), targets=tuple(targets))

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int]) -> LabelledTexts:
        """The examples at `indices`, in that order, with the same label names."""
        return LabelledTexts(
            texts=tuple(self.texts[i] for i in indices),
            labels=tuple(self.labels[i] for i in indices),
            label_names=self.label_names,
            targets=None if self.targets is None else tuple(self.targets[i] for i in indices),
            tags=None if self.tags is None else tuple(self.tags[i] for i in indices),
        )

    def deduplicated(self) -> LabelledTexts:
        """Drop exact repeats of a text, keeping the first copy.

        A text whose copies carry different labels is dropped entirely: no label
        for it can be trusted.
        """
        labels_of: dict[str, set[int]] = {}
        for text, label in zip(self.texts, self.labels):
            labels_of.setdefault(text, set()).add(label)
        seen: set[str] = set()
        keep = []
        for i, text in enumerate(self.texts):
            if text in seen or len(labels_of[text]) > 1:
                continue
            seen.add(text)
            keep.append(i)
        return self.subset(keep)

    def fingerprint(self) -> str:
        """A sha256 hex digest of the texts, labels and label names, to key caches."""
        parts: list = [self.label_names, self.labels, self.texts]
        parts += [extra for extra in (self.targets, self.tags) if extra is not None]
        payload = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def check_teacher_classes(data: LabelledTexts, teacher_classes: int | None, *, teacher: str) -> None:
    """A teacher used as saved (not fine-tuned here) predicts the data's classes: as many of them."""
    if teacher_classes != len(data.label_names):
        raise ConfigError(
            f"data.train_file: the data has {len(data.label_names)} classes {list(data.label_names)} but "
            f"{teacher} was saved with {teacher_classes} (num_labels in its config.json); give data with "
            "the teacher's classes, or fine-tune it on this data (teacher.fine_tune: {epochs: 1}, search only)"
        )
