"""Layer capture: dotted module paths, output indices, hooks removed, clear errors."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_bert, toy_batches
from torch import nn

from autodistill.capture import FeatureCapture, resolve_module
from autodistill.errors import CaptureError


def test_self_attention_index_1_is_the_attention_probabilities():
    model = tiny_bert(hidden=32, layers=2, heads=4).eval()
    batch = toy_batches(1, 4)[0]
    path = "bert.encoder.layer.1.attention.self"
    with FeatureCapture(model, [path]) as capture:
        capture.run(model, input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    output_attentions=True)
        probs = capture.get(path, (1,))
        hidden = capture.get(path, (0,))
    assert probs.shape == (4, 4, 12, 12)
    assert torch.allclose(probs.sum(-1), torch.ones(4, 4, 12), atol=1e-5)
    assert hidden.shape == (4, 12, 32)
    # the same tensor the model returns as its own attention output: captured, not copied
    assert torch.equal(probs, capture.output.attentions[1])


def test_nested_index_and_dict_like_outputs():
    model = tiny_bert().eval()
    batch = toy_batches(1, 2)[0]
    with FeatureCapture(model, ["", "bert"]) as capture:
        capture.run(model, **{k: v for k, v in batch.items() if k != "labels"})
        logits = capture.get("", ("logits",))
        last_hidden = capture.get("bert", (0,))
        by_key = capture.get("bert", ("last_hidden_state",))
    assert logits.shape == (2, 2)
    assert last_hidden is by_key


def test_hooks_are_removed_on_exit():
    model = tiny_bert()
    module = resolve_module(model, "bert.encoder.layer.0.output")
    with FeatureCapture(model, ["bert.encoder.layer.0.output"]):
        assert len(module._forward_hooks) == 1
    assert len(module._forward_hooks) == 0


def test_missing_path_lists_the_closest_names():
    model = tiny_bert()
    with pytest.raises(CaptureError) as err:
        FeatureCapture(model, ["bert.encoder.layers.1.output"])
    assert "bert.encoder.layer.1.output" in str(err.value)


def test_index_out_of_range_names_the_actual_length():
    model = tiny_bert().eval()
    path = "bert.encoder.layer.0.attention.self"
    with FeatureCapture(model, [path]) as capture:
        capture.run(model, input_ids=toy_batches(1, 2)[0]["input_ids"])
        with pytest.raises(CaptureError, match="length 2"):
            capture.get(path, (5,))


def test_sdpa_attention_none_gets_an_eager_hint():
    from transformers import BertModel

    model = tiny_bert(cls=BertModel, hidden=16, layers=1, heads=2, attn_implementation="sdpa").eval()
    path = "encoder.layer.0.attention.self"
    with FeatureCapture(model, [path]) as capture:
        capture.run(model, input_ids=torch.randint(1, 60, (2, 5)))
        with pytest.raises(CaptureError, match="eager"):
            capture.get(path, (1,))


class SmallCNN(nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(width, width * 2, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(width * 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def test_capture_on_a_plain_cnn():
    model = SmallCNN()
    with FeatureCapture(model, ["features.1", "features.3"]) as capture:
        out = capture.run(model, torch.randn(2, 3, 8, 8))
        assert capture.get("features.1").shape == (2, 8, 8, 8)
        assert capture.get("features.3").shape == (2, 16, 8, 8)
    assert out.shape == (2, 10)


def test_stop_when_complete_skips_the_rest_of_the_forward():
    model = SmallCNN()
    ran = []
    model.head.register_forward_hook(lambda *a: ran.append(True))
    with FeatureCapture(model, ["features.1"], stop_when_complete=True) as capture:
        assert capture.run(model, torch.randn(2, 3, 8, 8)) is None
        assert capture.get("features.1").shape == (2, 8, 8, 8)
    assert ran == []
