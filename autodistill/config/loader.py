"""YAML -> typed sections, once, at the edge. Errors name the file, line, key and the fix.

    config = load_config("configs/quickstart.yaml")     # -> ConfigFile
    plan = load_distillation_plan("configs/distill.yaml")

YAML is read with `yaml.safe_load` semantics (no tags that run code). A pydantic
validation error becomes one `ConfigError` whose message starts with
`file:line:column: dotted.key:`; unknown keys get the nearest valid key.

Two things YAML allows are refused before any key is checked: a key written twice in one
mapping (YAML keeps the last silently; the error names both lines), and aliases that expand
the document past `MAX_NODES` values (an "alias bomb": a few lines of `&a [*b, *b, ...]` reach
gigabytes). Anchors, aliases and `<<` merge keys that reuse a part of the file are fine.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from autodistill.config.distillation import DistillationSection
from autodistill.config.plan import DistillationPlan
from autodistill.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from autodistill.config.schema import AutoDistillationSection, SearchSection

M = TypeVar("M", bound=BaseModel)
Location = tuple[str | int, ...]

MAX_NODES = 100_000  # values in the document once every alias is expanded


def _at(source: Path, node: yaml.Node) -> str:
    return f"{source}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _check_nodes(source: Path, root: yaml.Node) -> None:
    """Refuse duplicate keys (naming both lines) and alias expansion past MAX_NODES, in one pass
    over the distinct nodes (an alias is the node it names: each is sized once)."""
    sizes: dict[int, int] = {}
    pending: set[int] = set()

    def size(node: yaml.Node, at: Location) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in pending:
            raise ConfigError(f"{_at(source, node)}: {'.'.join(map(str, at)) or '(top level)'}: an alias "
                              "refers to the node that holds it; write the value out")
        pending.add(id(node))
        total = 1
        if isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], yaml.Node] = {}
            for key, value in node.value:
                name = (key.tag, key.value) if isinstance(key, yaml.ScalarNode) else None
                if name is not None and name[1] != "<<" and name in first:
                    dotted = ".".join(map(str, (*at, key.value)))
                    raise ConfigError(f"{_at(source, key)}: {dotted}: duplicate key (first at line "
                                      f"{first[name].start_mark.line + 1}); keep one of them")
                if name is not None:
                    first[name] = key
                total += size(key, at) + size(value, (*at, key.value if name else "?"))
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item, (*at, i)) for i, item in enumerate(node.value))
        if total > MAX_NODES:
            raise ConfigError(f"{_at(source, node)}: {'.'.join(map(str, at)) or '(top level)'}: aliases "
                              f"expand this value to more than {MAX_NODES:,} values; write out what you "
                              "mean to repeat, or use fewer aliases")
        pending.discard(id(node))
        sizes[id(node)] = total
        return total

    size(root, ())


def _index_lines(node: yaml.Node, at: Location, out: dict[Location, tuple[int, int]]) -> None:
    out[at] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = key.value
            out[(*at, name)] = (key.start_mark.line + 1, key.start_mark.column + 1)
            _index_lines(value, (*at, name), out)
            out[(*at, name)] = (key.start_mark.line + 1, key.start_mark.column + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, (*at, i), out)


def read_yaml(path: str | Path) -> tuple[Any, dict[Location, tuple[int, int]]]:
    """The parsed YAML and a map from key paths to (line, column)."""
    p = Path(path)
    try:
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} does not exist"
                              + (" (it is a folder)" if p.is_dir() else ""))
        text = p.read_text(encoding="utf-8")
    except OSError as exc:  # a name too long, no permission, ...
        raise ConfigError(f"config file {str(p)!r} cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{p}:{line}: not UTF-8 text (byte {exc.object[exc.start]:#04x}); "
                          "save the file as UTF-8") from None
    try:  # what yaml.safe_load does, keeping the node tree for the line numbers: one parse
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _check_nodes(p, node)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{p}:{mark.line + 1}:{mark.column + 1}" if mark else str(p)
        raise ConfigError(f"{where}: malformed YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:  # e.g. a control character (yaml.reader.ReaderError)
        raise ConfigError(f"{p}: malformed YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise ConfigError(f"{p}: malformed YAML: nested too deeply") from None
    lines: dict[Location, tuple[int, int]] = {}
    if node is not None:
        _index_lines(node, (), lines)
    return data, lines


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model class inside an annotation (Optional, list, Annotated, unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    if isinstance(annotation, types.UnionType):
        for arg in annotation.__args__:
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def allowed_keys(model: type[BaseModel], loc: Location) -> list[str]:
    """The keys accepted at `loc` (a path into `model`), as users write them."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return []
        if isinstance(part, int):
            continue
        field = next((f for n, f in current.model_fields.items()
                      if part in (n, f.alias) or (f.validation_alias and part in str(f.validation_alias))),
                     None)
        if field is None:
            return []
        current = _model_in(field.annotation)
    if current is None:
        return []
    return [f.alias or n for n, f in current.model_fields.items()]


def _where(source: str, lines: Mapping[Location, tuple[int, int]], loc: Location) -> str:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            line, col = lines[loc[:cut]]
            return f"{source}:{line}:{col}"
    return source


def _message(model: type[BaseModel], err: Mapping[str, Any], prefix: Location) -> str:
    loc = tuple(p for p in err["loc"]
                if not (isinstance(p, str) and (p.startswith("function-") or p.startswith("<"))))
    key = ".".join(str(p) for p in (*prefix, *loc)) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = allowed_keys(model, loc[:-1])
        hint = did_you_mean(str(loc[-1]), allowed)
        return f"{key}: unknown key{hint}; allowed keys here: {', '.join(allowed)}"
    if kind == "missing":
        return f"{key}: required key is missing"
    msg = str(err["msg"]).removeprefix("Value error, ")
    value = err.get("input")
    shown = "" if isinstance(value, (dict, list)) or value is None else f" (got {value!r})"
    if isinstance(value, str) and value.rstrip().endswith(",") and kind.endswith("_parsing"):
        # `temperature: 1.0,` (seed 003's own example): in YAML the comma is part of the value
        return (f"{key}: {msg}{shown}: a comma ends a value only inside [...] or {{...}} in YAML; "
                f"write {key.rsplit('.', 1)[-1]}: {value.rstrip().rstrip(',').strip()}")
    return f"{key}: {msg}{shown}"


def validate(model: type[M], data: Any, *, source: str = "<config>",
             lines: Mapping[Location, tuple[int, int]] | None = None, prefix: Location = ()) -> M:
    """`model.model_validate(data)`, with errors as one ConfigError naming file, line and key."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping of keys at the top, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        loc = (*prefix, *(p for p in first["loc"] if not (isinstance(p, str) and p.startswith("<"))))
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise ConfigError(f"{_where(source, lines or {}, loc)}: {_message(model, first, prefix)}{more}") from None
    except ConfigError as exc:  # raised inside a validator (e.g. an unknown registry name)
        raise ConfigError(f"{source}: {exc}") from None


def load_config_file(model: type[M], path: str | Path) -> M:
    """A whole config file validated as `model`, errors naming file, line and key."""
    data, lines = read_yaml(path)
    return validate(model, data, source=str(path), lines=lines)


def _read_source(source: Any, what: str) -> tuple[Any, dict[Location, tuple[int, int]], str]:
    """(data, its line index, a name for messages) of a YAML path or an in-memory mapping;
    anything else is a ConfigError starting with `what`."""
    if isinstance(source, (str, Path)):
        data, lines = read_yaml(source)
        return data, lines, str(source)
    if isinstance(source, Mapping):
        return source, {}, "<config>"
    raise ConfigError(f"{what}; got {type(source).__name__}")


def load_distillation_section(source: str | Path | Mapping[str, Any] | DistillationSection
                              ) -> DistillationSection:
    """The validated section from a YAML file, a mapping, or a section. Files may hold it at
    the top, under `distillation:` or under `auto_distillation:`."""
    if isinstance(source, DistillationSection):
        return source
    data, lines, name = _read_source(source, "a distillation config is a YAML path, a mapping, a "
                                             "DistillationSection or a DistillationPlan")
    prefix: Location = ()
    if isinstance(data, Mapping):
        for key in ("distillation", "auto_distillation"):
            if key in data:
                data, prefix = data[key], (key,)
                break
    if isinstance(data, Mapping) and "search" in data:
        # an auto_distillation section: the search part is the search service's; seed 003
        # writes `train:` and `evaluation:` with a `...` placeholder when they are not used
        data = {k: v for k, v in data.items() if k not in ("search", "evaluation")
                and not (k == "train" and v in (None, "..."))}
    return validate(DistillationSection, data, source=name, lines=lines, prefix=prefix)


def load_distillation_plan(source: str | Path | Mapping[str, Any] | DistillationSection) -> DistillationPlan:
    """The plan the engine runs, from anything `load_distillation_section` takes."""
    return load_distillation_section(source).plan()


@dataclass(frozen=True)
class SearchConfig:
    """What `AutoDistillation(model_builder, config)` reads from its config: the search section,
    the whole `auto_distillation` section when the config has stages (`training`: its stages,
    evaluation.latency and early_stopping), and a file's `output_dir` and `model.name`."""

    search: SearchSection
    training: AutoDistillationSection | None = None
    output_dir: str | None = None
    name: str | None = None


_SEARCH_FILE_KEYS = ("model", "auto_distillation", "output_dir")


def load_search_config(source: Any) -> SearchConfig:
    """A `SearchConfig` from seed 003's `autodistillation_config` dict (`{'search': {...},
    'flash_distillation': {...}}`), its `search` part alone (`{'search_space': ...}`), a YAML
    path holding either (at the top or under `auto_distillation:`, beside `model:` and
    `output_dir:`, or a whole `autodistill search` file), a `SearchSection`, an
    `AutoDistillationSection` or a `SearchRunConfig`."""
    from autodistill.config.schema import (
        AutoDistillationSection,
        ModelSection,
        SearchRunConfig,
        SearchSection,
    )

    if isinstance(source, SearchConfig):
        return source
    if isinstance(source, SearchSection):
        return SearchConfig(source)
    if isinstance(source, AutoDistillationSection):
        return SearchConfig(source.search, source)
    if isinstance(source, SearchRunConfig):
        return SearchConfig(source.search, source.auto_distillation, source.output_dir,
                            source.model.name if source.model is not None else None)
    data, lines, name = _read_source(source, "AutoDistillation's config is seed 003's autodistillation_config "
                                             "dict, its 'search' part, a YAML path, a SearchSection or an "
                                             "AutoDistillationSection")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{name}: expected a mapping of keys at the top, got {type(data).__name__}")
    prefix: Location = ()
    output_dir = model_name = None
    if "teacher" in data:  # a whole `autodistill search` file: its search and stages are used
        return load_search_config(validate(SearchRunConfig, data, source=name, lines=lines))
    if "auto_distillation" in data:
        extra = sorted(set(data) - set(_SEARCH_FILE_KEYS))
        if extra:
            raise ConfigError(f"{_where(name, lines, (extra[0],))}: {extra[0]}: unknown key beside "
                              f"auto_distillation{did_you_mean(str(extra[0]), _SEARCH_FILE_KEYS)}; "
                              f"allowed keys here: {', '.join(_SEARCH_FILE_KEYS)}, or a whole search file "
                              "(teacher, student, data)")
        if data.get("model") is not None:
            model_name = validate(ModelSection, data["model"], source=name, lines=lines, prefix=("model",)).name
        output_dir = data.get("output_dir")
        if output_dir is not None and not isinstance(output_dir, (str, Path)):
            raise ConfigError(f"{_where(name, lines, ('output_dir',))}: output_dir: expected a folder path, "
                              f"got {output_dir!r}")
        data, prefix = data["auto_distillation"], ("auto_distillation",)
        if not isinstance(data, Mapping):
            raise ConfigError(f"{_where(name, lines, prefix)}: auto_distillation: expected a mapping "
                              f"of keys, got {type(data).__name__}")
    if "search" in data and set(data) != {"search"}:
        training = validate(AutoDistillationSection, data, source=name, lines=lines, prefix=prefix)
        return SearchConfig(training.search, training, None if output_dir is None else str(output_dir), model_name)
    if "search" in data:
        data, prefix = data["search"], (*prefix, "search")
    elif "search_space" not in data:
        raise ConfigError(f"{name}: {'.'.join(map(str, prefix)) or '(top level)'}: a search config holds "
                          "'search' (seed 003's autodistillation_config) or 'search_space' (its search "
                          f"part); got the keys {sorted(map(str, data))}")
    search = validate(SearchSection, data, source=name, lines=lines, prefix=prefix)
    return SearchConfig(search, None, None if output_dir is None else str(output_dir), model_name)
