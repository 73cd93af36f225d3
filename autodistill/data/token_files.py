"""Read a token-classification file: JSON Lines, one example per line, words and their tags.

    {"tokens": ["John", "lives", "in", "Paris"], "tags": ["B-PER", "O", "O", "B-LOC"]}

`data.text_column` names the words (a list of strings), `data.label_column` the tags (a list of
names, one per word). Tag names map to ids in the order of `label_names` or, when that is not
given, in sorted order. Every error names the file, the line and the column.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

from autodistill.data.examples import LabelledTexts
from autodistill.data.text_files import _decode, _require_column
from autodistill.errors import ConfigError, did_you_mean


def read_tagged_file(path: str | os.PathLike[str], *, text_column: str = "tokens",
                     label_column: str = "tags", label_names: Sequence[str] | None = None) -> LabelledTexts:
    """`path` (.jsonl or .json holding JSON Lines) as texts (the words joined by spaces) with tags."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file; check the path (relative to {Path.cwd()})")
    if path.suffix.lower() not in (".jsonl", ".json"):
        raise ConfigError(f"{path}: task token_classification reads JSON Lines (.jsonl or .json), not "
                          f"{path.suffix!r}; write one {{\"{text_column}\": [...], \"{label_column}\": [...]}} "
                          "per line")
    rows: list[tuple[int, list[str], list[str]]] = []
    for line, source in enumerate(io.StringIO(_decode(path), newline=""), start=1):
        if not source.strip():
            continue
        try:
            record = json.loads(source)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}, line {line}: malformed JSON ({err.msg} at character {err.colno}); "
                              "write one JSON object per line") from err
        if not isinstance(record, dict):
            raise ConfigError(f"{path}, line {line}: expected a JSON object, got {type(record).__name__}")
        for column in (text_column, label_column):
            _require_column(path, f"line {line}", column, list(record))
        words, tags = record[text_column], record[label_column]
        where = f"{path}, line {line}"
        if not (isinstance(words, list) and words and all(isinstance(w, str) and w and not any(
                c.isspace() for c in w) for w in words)):
            raise ConfigError(f"{where}, column '{text_column}': the words must be a non-empty list of "
                              f"strings without spaces (data.text_column), got {words!r:.80}")
        if not (isinstance(tags, list) and all(isinstance(t, str) and t for t in tags)):
            raise ConfigError(f"{where}, column '{label_column}': the tags must be a list of tag names "
                              f"(data.label_column), got {tags!r:.80}")
        if len(tags) != len(words):
            raise ConfigError(f"{where}: {len(words)} words but {len(tags)} tags; give one tag per word "
                              f"in column '{label_column}' (data.label_column)")
        rows.append((line, words, tags))
    if not rows:
        raise ConfigError(f"{path}: the file holds no examples; add at least one line")
    names = tuple(label_names) if label_names else tuple(sorted({t for _, _, tags in rows for t in tags}))
    index = {name: i for i, name in enumerate(names)}
    for line, _, tags in rows:
        unknown = next((t for t in tags if t not in index), None)
        if unknown is not None:
            raise ConfigError(f"{path}, line {line}, column '{label_column}': tag {unknown!r} is not in "
                              f"{list(names)}{did_you_mean(unknown, names)}; fix the tag or add it to "
                              "data.label_names")
    return LabelledTexts(texts=tuple(" ".join(words) for _, words, _ in rows), labels=(0,) * len(rows),
                         label_names=names, tags=tuple(tuple(index[t] for t in tags) for _, _, tags in rows))
