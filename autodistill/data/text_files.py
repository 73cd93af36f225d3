"""Read a labelled text-classification file: CSV, TSV or JSON Lines.

Every error names the file and, where there is one, the line and the column, so a
user can go straight to the value that broke the rule.

One text may hold at most `MAX_TEXT_CHARACTERS`: only its first `data.max_length` tokens are
read, and the tokenizer needs about 140 bytes of memory per character of a text (a 50 MB text
took 7 GB), so a longer one is refused with its line rather than exhausting the machine.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from autodistill.data.examples import LabelledTexts
from autodistill.errors import ConfigError, did_you_mean

MAX_TEXT_CHARACTERS = 1_000_000
_TOO_LONG_FIX = ("only the first data.max_length tokens are read: shorten it, or split it into "
                 "several rows")


@dataclass(frozen=True)
class _Row:
    """One example as found in the file, before labels become ids."""

    line: int
    text: str
    label: int | str | float


def read_text_file(
    path: str | os.PathLike[str],
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    label_names: Sequence[str] | None = None,
    targets: bool = False,
) -> LabelledTexts:
    """Read `path` (.csv, .tsv, or JSON Lines in .jsonl/.json) into labelled texts.

    With `label_column=None` only the text column is read (a label column, if any, is
    ignored): the texts come back `LabelledTexts.unlabelled` (the masked-LM task's data). With
    `targets=True` the label column holds numbers (JSON numbers or numeric strings), read as
    `LabelledTexts.with_targets` (the regression task's data).

    Labels are either names or integer ids. Names map to ids in the order of
    `label_names` or, when that is not given, in sorted order. A file whose labels
    are all integers (JSON numbers, or digit strings in CSV) holds ids: they index
    `label_names`, or name themselves ("0", "1", ...) when it is not given. When
    `label_names` is given and every label is one of those names, they are read as
    names even if they are digits.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file; check the path (relative to {Path.cwd()})")
    reader = _ROW_READERS.get(path.suffix.lower())
    if reader is None:
        raise ConfigError(
            f"{path}: unknown extension {path.suffix!r}; allowed: "
            + ", ".join(sorted(_ROW_READERS))
            + " (.json must hold JSON Lines: one object per line)"
        )
    rows = reader(path, _decode(path), text_column, label_column, targets)
    if not rows:
        raise ConfigError(f"{path}: the file holds no examples; add at least one row")
    if label_column is None:
        return LabelledTexts.unlabelled(r.text for r in rows)
    if targets:
        return LabelledTexts.with_targets((r.text for r in rows), (float(r.label) for r in rows))
    ids, names = _label_ids(path, rows, label_column, label_names)
    return LabelledTexts(texts=tuple(r.text for r in rows), labels=ids, label_names=names)


def _decode(path: Path) -> str:
    """The file's text as UTF-8 (a byte-order mark is allowed)."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}, line {line}: not valid UTF-8 (byte offset {err.start}); "
            "save the file as UTF-8"
        ) from err


def _read_csv(path: Path, content: str, text_column: str, label_column: str | None,
              numeric: bool) -> list[_Row]:
    """Rows of a CSV (.csv) or tab-separated (.tsv) file with a header line."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    if csv.field_size_limit() < MAX_TEXT_CHARACTERS:  # the csv module's default is 131,072
        csv.field_size_limit(MAX_TEXT_CHARACTERS)
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    rows = []
    while True:
        line = reader.line_num + 1  # the line this record starts on
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            if "field larger than field limit" in str(err):
                raise ConfigError(f"{path}, line {line}: a field is longer than {MAX_TEXT_CHARACTERS:,} "
                                  f"characters, the most one text may hold; {_TOO_LONG_FIX}") from None
            raise ConfigError(f"{path}, line {line}: malformed CSV ({err})") from err
        if not fields:
            continue  # blank line
        if header is None:
            header = [name.strip() for name in fields]
            for column in _columns(text_column, label_column):
                _require_column(path, f"line {line} (header)", column, header)
            continue
        if len(fields) != len(header):
            raise ConfigError(
                f"{path}, line {line}: {len(fields)} fields but the header has {len(header)}; "
                f"quote values that contain the delimiter {delimiter!r}"
            )
        record = dict(zip(header, fields))
        rows.append(_row(path, line, record, text_column, label_column, numeric))
    return rows


def _read_json_lines(path: Path, content: str, text_column: str, label_column: str | None,
                     numeric: bool) -> list[_Row]:
    """Rows of a JSON Lines file: one JSON object per non-blank line."""
    rows = []
    for line, source in enumerate(io.StringIO(content, newline=""), start=1):
        if not source.strip():
            continue
        try:
            record = json.loads(source)
        except json.JSONDecodeError as err:
            raise ConfigError(
                f"{path}, line {line}: malformed JSON ({err.msg} at character {err.colno}); "
                "write one JSON object per line"
            ) from err
        if not isinstance(record, dict):
            raise ConfigError(
                f"{path}, line {line}: expected a JSON object such as "
                f'{{"{text_column}": "...", "{label_column}": "..."}}, got {type(record).__name__}'
            )
        for column in _columns(text_column, label_column):
            _require_column(path, f"line {line}", column, list(record))
        rows.append(_row(path, line, record, text_column, label_column, numeric))
    return rows


def _columns(text_column: str, label_column: str | None) -> tuple[str, ...]:
    """The columns every row must have."""
    return (text_column,) if label_column is None else (text_column, label_column)


_ROW_READERS: dict[str, Callable[[Path, str, str, str | None, bool], list[_Row]]] = {
    ".csv": _read_csv,
    ".tsv": _read_csv,
    ".jsonl": _read_json_lines,
    ".json": _read_json_lines,
}


def _require_column(path: Path, where: str, column: str, present: list[str]) -> None:
    """Raise unless `column` is among the columns `present` at `where`."""
    if column not in present:
        raise ConfigError(
            f"{path}, {where}: no column '{column}'{did_you_mean(column, present)}; "
            f"columns present: {present}; set the column name to one of them"
        )


def _row(path: Path, line: int, record: dict, text_column: str, label_column: str | None,
         numeric: bool = False) -> _Row:
    """Check one record's text and label and keep them with their line number."""
    where = f"{path}, line {line}, column '{text_column}'"
    text = record[text_column]
    if not isinstance(text, str):
        raise ConfigError(f"{where}: the text must be a string, got {text!r}")
    if len(text) > MAX_TEXT_CHARACTERS:
        raise ConfigError(f"{where}: the text has {len(text):,} characters, more than the "
                          f"{MAX_TEXT_CHARACTERS:,} one text may hold; {_TOO_LONG_FIX}")
    if not text.strip():
        raise ConfigError(f"{where}: the text is empty; remove the row or fill in its text")
    if label_column is None:
        return _Row(line=line, text=text, label=0)
    where = f"{path}, line {line}, column '{label_column}'"
    label = record[label_column]
    if numeric:
        return _Row(line=line, text=text, label=_number(where, label))
    if isinstance(label, str):
        label = label.strip()
        if not label:
            raise ConfigError(f"{where}: the label is empty; give every row a label")
    elif isinstance(label, bool) or not isinstance(label, int):
        raise ConfigError(f"{where}: the label must be a name or an integer id, got {label!r}")
    return _Row(line=line, text=text, label=label)


def _number(where: str, value: object) -> float:
    """A regression target: a JSON number or a numeric string, finite."""
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise ConfigError(f"{where}: task regression reads data.label_column as numbers, but got "
                          f"{value!r}; give a finite number, or set data.label_column to the numeric column")
    return number


def _is_id(label: int | str | float) -> bool:
    """Whether a raw label reads as an integer class id."""
    return isinstance(label, int) or (isinstance(label, str) and label.isascii() and label.isdigit())


def _label_ids(
    path: Path, rows: list[_Row], label_column: str, label_names: Sequence[str] | None
) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Class ids for the rows' labels, and the class names they index."""
    given = None if label_names is None else tuple(label_names)
    if given is not None and all(str(r.label) in given for r in rows):
        return _ids_by_name(rows, given), given
    if all(_is_id(r.label) for r in rows):
        top = max(int(r.label) for r in rows)
        names = given if given is not None else tuple(str(i) for i in range(top + 1))
        for row in rows:
            if not 0 <= int(row.label) < len(names):
                raise ConfigError(
                    f"{path}, line {row.line}, column '{label_column}': label id {row.label} is "
                    f"out of range: there are {len(names)} classes {list(names)}, ids "
                    f"0..{len(names) - 1}; fix the id or extend label_names"
                )
        return tuple(int(r.label) for r in rows), names
    if given is None:
        names = tuple(sorted({str(r.label) for r in rows}))
        return _ids_by_name(rows, names), names
    row = next(r for r in rows if str(r.label) not in given)
    raise ConfigError(
        f"{path}, line {row.line}, column '{label_column}': label {str(row.label)!r} is not in "
        f"label_names {list(given)}{did_you_mean(str(row.label), given)}; "
        "fix the label or add it to label_names"
    )


def _ids_by_name(rows: list[_Row], names: tuple[str, ...]) -> tuple[int, ...]:
    """Each row's label looked up by name in `names`."""
    index = {name: i for i, name in enumerate(names)}
    return tuple(index[str(r.label)] for r in rows)
