"""The elastic supernet: one ordinary model whose front slices are the sub-networks.

A sub-network is an architecture (for BERT `hidden_size`, `num_hidden_layers`,
`num_attention_heads`, `intermediate_size`; a key left out keeps the supernet's value). Its forward runs the
model's own class, built once per architecture on the meta device with the sliced config,
through `torch.func.functional_call` on views of the supernet's tensors: gradients reach
the supernet's entries the sub-network uses and no others, and `extract` (the same tensors,
copied into a real model of that class) computes exactly what the elastic forward does.

The slices, for BERT (`ElasticBert`): every hidden axis takes the first d entries (the
embeddings, both LayerNorms of each layer, which then normalise over those d dims, the
pooler, the classifier's inputs); q/k/v take their first d rows, regrouped into h heads of
d/h dims (what a stand-alone `BertConfig(hidden_size=d, num_attention_heads=h)` computes); the
FFN its first f neurons; depth L picks supernet layers by `teacher_layer_for` (evenly
spread, the rule of `init_from_teacher` and the flash templates). Reordering the teacher by
importance first (`autodistill.supernet.importance`) makes the first heads and neurons the
most important ones.

A model type is a `Layout` (its config keys for the four dimensions, where its layers and their
projections are) on `FrontSlices`; BERT and DistilBERT are registered in ELASTIC under their
`config.model_type`. A type whose sub-networks are not front slices of its tensors (MobileBERT's
bottlenecks tie several widths together) needs its own class with the same three methods.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch
from torch import Tensor, nn
from torch.func import functional_call
from transformers import PretrainedConfig, PreTrainedModel

from autodistill.config.stages import teacher_layer_for
from autodistill.errors import ConfigError, InvalidArchitecture
from autodistill.registry import Registry

__all__ = ["BERT", "DISTILBERT", "ELASTIC", "ElasticBert", "ElasticDistilBert", "ElasticModel", "FrontSlices",
           "Layout", "Slices", "check_supernet_space", "elastic_for", "layout_for"]

Slices = tuple[slice, ...]
_Template = tuple[PreTrainedModel, dict[str, tuple[str, Slices]]]  # a meta-device sub-network, its sources
_STRATEGY_FIX = "set search.strategy: per_trial"
_CACHED_TEMPLATES = 32  # meta-device models kept, one per recently used architecture


@dataclass(frozen=True)
class Layout:
    """Where a model type keeps what a supernet slices: the config keys of the four dimensions,
    the layer list (under the base model) and, inside a layer, the attention's q/k/v and output
    projections and the FFN's two projections (paths of nn.Linear modules)."""

    hidden: str
    depth: str
    heads: str
    ffn: str
    layers: str
    query: str
    key: str
    value: str
    attention_out: str
    ffn_in: str
    ffn_out: str

    @property
    def keys(self) -> tuple[str, str, str, str]:
        return (self.hidden, self.depth, self.heads, self.ffn)


BERT = Layout(hidden="hidden_size", depth="num_hidden_layers", heads="num_attention_heads",
              ffn="intermediate_size", layers="encoder.layer", query="attention.self.query",
              key="attention.self.key", value="attention.self.value", attention_out="attention.output.dense",
              ffn_in="intermediate.dense", ffn_out="output.dense")
DISTILBERT = Layout(hidden="dim", depth="n_layers", heads="n_heads", ffn="hidden_dim", layers="transformer.layer",
                    query="attention.q_lin", key="attention.k_lin", value="attention.v_lin",
                    attention_out="attention.out_lin", ffn_in="ffn.lin1", ffn_out="ffn.lin2")


class ElasticModel(Protocol):
    """A supernet of one model type: its weights, sub-network forward, extraction, slices."""

    model: PreTrainedModel

    @property
    def layout(self) -> Layout: ...

    def forward(self, architecture: Mapping[str, Any], **inputs: Any) -> Tensor: ...

    def extract(self, architecture: Mapping[str, Any]) -> PreTrainedModel: ...

    def parameter_slices(self, architecture: Mapping[str, Any]) -> dict[str, Slices]: ...


ELASTIC: Registry[type[FrontSlices]] = Registry("elastic model type")


def _front(shape: Sequence[int]) -> Slices:
    return tuple(slice(0, n) for n in shape)


class FrontSlices:
    """The elastic forward of a sequence classifier whose sub-networks are front slices of its
    tensors (see the module docstring); `layout` names its keys and modules."""

    layout: ClassVar[Layout]

    def __init__(self, model: PreTrainedModel) -> None:
        for attribute in ("base_model", "classifier"):
            if not isinstance(getattr(model, attribute, None), nn.Module):
                raise ConfigError(
                    f"search.strategy: supernet slices sequence classifiers (a base model and a "
                    f"'classifier'), but {type(model).__name__} has no {attribute!r}; "
                    f"use teacher.model_cls: AutoModelForSequenceClassification or {_STRATEGY_FIX}")
        self.model = model
        self._base = model.base_model_prefix
        self._templates: OrderedDict[str, _Template] = OrderedDict()

    # -- the architecture's config and slices ---------------------------------------------------
    def sub_config(self, architecture: Mapping[str, Any]) -> PretrainedConfig:
        """The supernet's config with the architecture's keys; InvalidArchitecture if it cannot be sliced."""
        unknown = sorted(set(architecture) - set(self.layout.keys))
        if unknown:
            raise ConfigError(f"search.search_space: the elastic forward slices only {', '.join(self.layout.keys)}, "
                              f"not {unknown}; remove them or {_STRATEGY_FIX}")
        base = self.model.config
        config = copy.deepcopy(base)
        for key, value in architecture.items():
            limit = getattr(base, key)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
                raise InvalidArchitecture(f"{key} {value!r} is outside the supernet (1..{limit})")
            setattr(config, key, value)
        hidden, heads = getattr(config, self.layout.hidden), getattr(config, self.layout.heads)
        if hidden % heads:
            raise InvalidArchitecture(f"{self.layout.hidden} {hidden} is not divisible by {self.layout.heads} {heads}")
        return config

    def _layer_map(self, config: PretrainedConfig) -> list[int]:
        depth, total = getattr(config, self.layout.depth), getattr(self.model.config, self.layout.depth)
        return [teacher_layer_for(i, depth, total) for i in range(depth)]

    def _sources(self, config: PretrainedConfig, template: PreTrainedModel) -> dict[str, tuple[str, Slices]]:
        """Per sub-network parameter: the supernet parameter it is a front slice of, and the slice."""
        prefix = f"{self._base}.{self.layout.layers}."
        layers = self._layer_map(config)
        sources = {}
        for name, tensor in template.named_parameters():
            source = name
            if name.startswith(prefix):
                index, rest = name[len(prefix):].split(".", 1)
                source = f"{prefix}{layers[int(index)]}.{rest}"
            sources[name] = (source, _front(tensor.shape))
        return sources

    def _template(self, architecture: Mapping[str, Any]) -> _Template:
        """The sub-network's model on the meta device and its sources, built once per architecture."""
        key = repr(sorted(architecture.items()))
        if key in self._templates:
            self._templates.move_to_end(key)
            return self._templates[key]
        config = self.sub_config(architecture)
        with torch.device("meta"):
            template = type(self.model)._from_config(config, attn_implementation=config._attn_implementation)
        entry = (template, self._sources(config, template))
        self._templates[key] = entry
        if len(self._templates) > _CACHED_TEMPLATES:
            self._templates.popitem(last=False)
        return entry

    def parameter_slices(self, architecture: Mapping[str, Any]) -> dict[str, Slices]:
        """Each supernet parameter the sub-network reads, and the front slice it reads."""
        _, sources = self._template(architecture)
        return dict(sources.values())

    def _tensors(self, sources: Mapping[str, tuple[str, Slices]]) -> dict[str, Tensor]:
        params = dict(self.model.named_parameters())
        sliced = {name: params[source][slices] for name, (source, slices) in sources.items()}
        return {**sliced, **dict(self.model.named_buffers())}

    # -- the two uses ----------------------------------------------------------------------------
    def forward(self, architecture: Mapping[str, Any], **inputs: Any) -> Tensor:
        """The sub-network's logits, computed on views of the supernet's weights."""
        template, sources = self._template(architecture)
        template.train(self.model.training)
        output = functional_call(template, self._tensors(sources), args=(), kwargs=inputs)
        return output.logits

    def extract(self, architecture: Mapping[str, Any]) -> PreTrainedModel:
        """A stand-alone model of the supernet's class with the sub-network's config and weights
        (copies: training it leaves the supernet alone), in the supernet's mode and device."""
        template, sources = self._template(architecture)
        config = copy.deepcopy(template.config)
        with torch.device("meta"):  # no initialisation to throw away: every tensor is assigned below
            model = type(self.model)._from_config(config, attn_implementation=config._attn_implementation)
        with torch.no_grad():
            tensors = {name: tensor.detach().clone() for name, tensor in self._tensors(sources).items()}
        saved = model.state_dict().keys()  # parameters and persistent buffers
        model.load_state_dict({k: v for k, v in tensors.items() if k in saved}, strict=True, assign=True)
        for name, tensor in tensors.items():
            if name not in saved:  # non-persistent buffers (position ids)
                module, _, leaf = name.rpartition(".")
                setattr(model.get_submodule(module), leaf, tensor)
        return model.train(self.model.training)

    # -- what a search space may ask of it -------------------------------------------------------
    @classmethod
    def check_space(cls, config: PretrainedConfig, dimensions: Mapping[str, Sequence[Any]]) -> None:
        keys = cls.layout.keys
        unknown = [key for key in dimensions if key not in keys]
        if unknown:
            raise ConfigError(
                f"search.search_space.{unknown[0]}: the supernet's elastic forward slices only "
                f"{', '.join(keys)}; remove {unknown[0]} from the space or {_STRATEGY_FIX}")
        for key, values in dimensions.items():
            limit = getattr(config, key)
            bad = [v for v in values if not isinstance(v, int) or isinstance(v, bool) or v < 1]
            if bad:
                raise ConfigError(f"search.search_space.{key}: a supernet slices whole units, so every "
                                  f"value must be an integer >= 1, got {bad[0]!r}; fix the value")
            widest = max(values)
            if widest > limit:
                raise ConfigError(
                    f"search.search_space.{key}: {widest} is larger than the teacher's {key} ({limit}), "
                    f"which is all the supernet can span; keep {key} <= {limit} or {_STRATEGY_FIX}")
        hidden_key, heads_key = cls.layout.hidden, cls.layout.heads
        hidden = dimensions.get(hidden_key, [getattr(config, hidden_key)])
        heads = dimensions.get(heads_key, [getattr(config, heads_key)])
        if not any(d % h == 0 for d in hidden for h in heads):
            raise ConfigError(
                f"search.search_space.{heads_key}: no value in {list(heads)} divides a {hidden_key} "
                f"in {list(hidden)}, so the space has no architecture; add a head count that divides one")


class ElasticBert(FrontSlices):
    """BERT (`BertForSequenceClassification`) and models of its layout."""

    layout = BERT


class ElasticDistilBert(FrontSlices):
    """DistilBERT (`DistilBertForSequenceClassification`: its pre-classifier is sliced like the pooler)."""

    layout = DISTILBERT

    @classmethod
    def check_space(cls, config: PretrainedConfig, dimensions: Mapping[str, Sequence[Any]]) -> None:
        if getattr(config, "sinusoidal_pos_embds", False) and "dim" in dimensions:
            raise ConfigError("search.search_space.dim: this DistilBERT's position embeddings are sinusoids "
                              "of its width, which a narrower slice does not reproduce; remove dim from the "
                              f"space or {_STRATEGY_FIX}")
        super().check_space(config, dimensions)


ELASTIC.register("bert", ElasticBert)
ELASTIC.register("distilbert", ElasticDistilBert)


def _model_type(config: Any) -> str:
    model_type = getattr(config, "model_type", None)
    if not isinstance(model_type, str) or model_type not in ELASTIC:
        raise ConfigError(
            f"search.strategy: supernet needs an elastic forward for model type {model_type!r}, and only "
            f"{', '.join(ELASTIC.names())} have one; {_STRATEGY_FIX} (or register one in "
            "autodistill.supernet.ELASTIC)")
    return model_type


def layout_for(model: PreTrainedModel) -> Layout:
    """Where `model`'s type keeps its heads and FFN neurons; ConfigError if its type has no elastic forward."""
    return ELASTIC.get(_model_type(getattr(model, "config", None))).layout


def elastic_for(model: PreTrainedModel) -> ElasticModel:
    """The elastic supernet over `model`'s weights (shared, not copied); ConfigError if its type has none."""
    return ELASTIC.get(_model_type(getattr(model, "config", None)))(model)


def check_supernet_space(model_config: PretrainedConfig, dimensions: Mapping[str, Sequence[Any]]) -> None:
    """ConfigError (the key, the value, the fix) when the space names a key the elastic forward
    does not slice or a value beyond the teacher's shape (wider, more heads, layers or neurons).
    Reads only the config: no weights are needed."""
    ELASTIC.get(_model_type(model_config)).check_space(model_config, dimensions)
