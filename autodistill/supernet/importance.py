"""Reorder a teacher's attention heads and FFN neurons by importance, leaving its function unchanged.

DynaBERT's criterion (Hou et al., 2020, after Michel et al., 2019, "Are sixteen heads really
better than one?"): a mask variable of ones multiplies each head's output and each FFN
neuron's activation; the importance of a head or neuron is |dL/dmask| (the first-order change
of the task loss when it is removed), summed over a few labelled training batches. Each
layer's heads and neurons are then permuted in place, most important first:

- a head is a block of `head_dim` rows of query, key and value (weights and biases) and the
  same block of columns of `attention.output.dense.weight`;
- an FFN neuron is a row of `intermediate.dense` (weight and bias) and a column of
  `output.dense.weight`.

Both permutations commute with the rest of the layer (softmax attention is per head, the
activation per neuron), so the model computes the same function: `init_from_teacher` and the
supernet's front slices then take the most important heads and neurons instead of the first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn
from transformers import PreTrainedModel

from autodistill.data.adaptor import DataAdaptor
from autodistill.errors import ConfigError
from autodistill.losses.logits import extract_own_loss
from autodistill.supernet.elastic import ELASTIC, Layout, layout_for

__all__ = ["ImportanceReport", "reorder_by_importance"]


@dataclass(frozen=True)
class ImportanceReport:
    """Per layer: the importance of each head and neuron (in the original order), and the
    original index now at each position (`head_order[l][0]` is layer l's most important head)."""

    head_importance: tuple[tuple[float, ...], ...]
    neuron_importance: tuple[tuple[float, ...], ...]
    head_order: tuple[tuple[int, ...], ...]
    neuron_order: tuple[tuple[int, ...], ...]
    batches: int


def _layers(model: PreTrainedModel) -> tuple[Layout, nn.ModuleList]:
    try:
        layout = layout_for(model)
    except ConfigError:
        raise ConfigError(
            f"importance ordering knows the layouts of {', '.join(ELASTIC.names())}, not "
            f"{type(model).__name__}; set student.importance_order: false (or search.strategy: "
            "per_trial)") from None
    return layout, cast(nn.ModuleList, model.base_model.get_submodule(layout.layers))


def _linear(layer: nn.Module, path: str) -> nn.Linear:
    """The projection at `path` in a layer (a Layout names nn.Linear modules only)."""
    return cast(nn.Linear, layer.get_submodule(path))


def _scale_input(mask: Tensor, repeat: int) -> Callable[..., object]:
    """A forward pre-hook multiplying the input's last axis by `mask`, each entry over `repeat` dims."""
    def hook(module: nn.Module, args: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        return (args[0] * mask.repeat_interleave(repeat), *args[1:])
    return hook


def _importance(model: nn.Module, layout: Layout, layers: nn.ModuleList, batches: Iterable[Mapping[str, Tensor]],
                heads: int, head_dim: int) -> tuple[Tensor, Tensor, int]:
    device = next(model.parameters()).device
    neurons = _linear(layers[0], layout.ffn_in).out_features
    head_masks = [torch.ones(heads, device=device, requires_grad=True) for _ in layers]
    neuron_masks = [torch.ones(neurons, device=device, requires_grad=True) for _ in layers]
    head_score = torch.zeros(len(layers), heads, device=device)
    neuron_score = torch.zeros(len(layers), neurons, device=device)
    handles = []
    for layer, head_mask, neuron_mask in zip(layers, head_masks, neuron_masks):
        # the attention output projection reads the heads' outputs side by side, the FFN's second
        # projection the activated neurons: masking their inputs masks heads and neurons
        handles.append(layer.get_submodule(layout.attention_out).register_forward_pre_hook(
            _scale_input(head_mask, head_dim)))
        handles.append(layer.get_submodule(layout.ffn_out).register_forward_pre_hook(_scale_input(neuron_mask, 1)))
    adaptor, count = DataAdaptor(), 0
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            if adaptor.labels(batch) is None:
                raise ConfigError("importance ordering ranks heads by the task loss, but a batch has no "
                                  "'labels'; give labelled training batches")
            inputs = adaptor.student_inputs({k: v.to(device) for k, v in batch.items()}, with_labels=True)
            loss = extract_own_loss(model(*inputs.args, **inputs.kwargs))
            if loss is None:
                raise ConfigError(f"importance ordering needs the model's own task loss, but "
                                  f"{type(model).__name__} returned none for labelled inputs")
            grads = torch.autograd.grad(loss, [*head_masks, *neuron_masks])
            head_score += torch.stack(grads[:len(layers)]).abs()
            neuron_score += torch.stack(grads[len(layers):]).abs()
            count += 1
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if count == 0:
        raise ConfigError("importance ordering got no batches; set supernet.importance_batches >= 1")
    return head_score, neuron_score, count


def _permute_rows(linear: nn.Linear, order: Tensor) -> None:
    linear.weight.copy_(linear.weight[order])
    if linear.bias is not None:
        linear.bias.copy_(linear.bias[order])


def reorder_by_importance(model: PreTrainedModel, batches: Iterable[Mapping[str, Tensor]]) -> ImportanceReport:
    """Measure head and FFN-neuron importance on `batches` (labelled), then permute each layer's
    heads and neurons in place, most important first; the model's outputs do not change."""
    layout, layers = _layers(model)
    heads = int(getattr(model.config, layout.heads))
    head_dim = _linear(layers[0], layout.query).out_features // heads
    head_score, neuron_score, count = _importance(model, layout, layers, batches, heads, head_dim)
    head_orders, neuron_orders = [], []
    with torch.no_grad():
        for layer, h_score, n_score in zip(layers, head_score, neuron_score):
            head_order = torch.argsort(h_score, descending=True, stable=True)
            neuron_order = torch.argsort(n_score, descending=True, stable=True)
            rows = (head_order[:, None] * head_dim + torch.arange(head_dim, device=head_order.device)).reshape(-1)
            for projection in (layout.query, layout.key, layout.value):
                _permute_rows(_linear(layer, projection), rows)
            out = _linear(layer, layout.attention_out)
            out.weight.copy_(out.weight[:, rows])
            _permute_rows(_linear(layer, layout.ffn_in), neuron_order)
            down = _linear(layer, layout.ffn_out)
            down.weight.copy_(down.weight[:, neuron_order])
            head_orders.append(tuple(head_order.tolist()))
            neuron_orders.append(tuple(neuron_order.tolist()))
    return ImportanceReport(
        head_importance=tuple(tuple(s.tolist()) for s in head_score.cpu()),
        neuron_importance=tuple(tuple(s.tolist()) for s in neuron_score.cpu()),
        head_order=tuple(head_orders), neuron_order=tuple(neuron_orders), batches=count)
