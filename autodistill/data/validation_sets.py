"""A config's validation sets: `data.validation_file` (the set named "validation") and
`data.validation_files` ({name: file}), in that order. A search chooses architectures on the
first set and records every set's figures; each set is scored with training's classes, so a
set holding a class that training lacks is refused before training, naming its key and file.
"""

from __future__ import annotations

from collections.abc import Callable

from autodistill.data.examples import LabelledTexts
from autodistill.errors import ConfigError


def named_files(validation_file: str | None, validation_files: dict[str, str] | None) -> dict[str, tuple[str, str]]:
    """{set name: (config key, file)}, `validation_file` first (as "validation")."""
    sets = {} if validation_file is None else {"validation": ("data.validation_file", validation_file)}
    for name, path in (validation_files or {}).items():
        sets[name] = (f"data.validation_files.{name}", path)
    return sets


def with_training_classes(data: LabelledTexts, train: LabelledTexts, *, key: str, path: str,
                          train_file: str) -> LabelledTexts:
    """`data` (read with its own class names) with training's class ids; a class training
    lacks is a ConfigError naming `key` and `path`. A file of integer ids takes them as
    training's ids."""
    names = train.label_names
    index = {name: i for i, name in enumerate(names)}
    ids_only = data.label_names == tuple(str(i) for i in range(len(data.label_names)))
    used = sorted(set(data.labels))
    mapping = {}
    for own in used:
        name = data.label_names[own]
        if name in index:
            mapping[own] = index[name]
        elif ids_only and own < len(names):
            mapping[own] = own
        else:
            raise ConfigError(
                f"{key}: {path}: label {name!r} is not one of training's labels {list(names)} "
                f"({train_file}); a validation set is scored with training's classes: fix or remove "
                "its rows with that label, or give training examples of it")
    return LabelledTexts(texts=data.texts, labels=tuple(mapping[label] for label in data.labels),
                         label_names=names, targets=data.targets, tags=data.tags)


def read_validation_sets(files: dict[str, tuple[str, str]], read: Callable[[str], LabelledTexts],
                         train: LabelledTexts, *, train_file: str, classes: bool) -> dict[str, LabelledTexts]:
    """Each named file read with `read(path)` (its own class names); with `classes`, mapped onto
    training's (`with_training_classes`)."""
    sets = {}
    for name, (key, path) in files.items():
        data = read(path)
        sets[name] = with_training_classes(data, train, key=key, path=path, train_file=train_file) \
            if classes else data
    return sets
