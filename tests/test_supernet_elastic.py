"""The elastic supernet: exact extraction, front slices only, the space checks, unsupported types."""

from __future__ import annotations

import random

import pytest
import torch
from conftest import tiny_bert, toy_batches
from transformers import BertForSequenceClassification, DistilBertConfig, DistilBertForSequenceClassification

from autodistill.errors import ConfigError, InvalidArchitecture
from autodistill.supernet import check_supernet_space, elastic_for

HIDDEN, HEADS, LAYERS, FFN = 32, 4, 4, 64


def _architectures(n: int, seed: int = 0) -> list[dict[str, int]]:
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        hidden = rng.choice([8, 16, 24, 32])
        heads = rng.choice([h for h in (1, 2, 4) if hidden % h == 0])
        out.append({"hidden_size": hidden, "num_attention_heads": heads,
                    "num_hidden_layers": rng.randint(1, LAYERS), "intermediate_size": rng.choice([8, 24, 64])})
    return out


@pytest.fixture
def supernet() -> BertForSequenceClassification:
    return tiny_bert(hidden=HIDDEN, layers=LAYERS, heads=HEADS, seed=3).eval()


def _inputs() -> dict[str, torch.Tensor]:
    batch = toy_batches(1, batch_size=8, padded=True)[0]
    assert (batch["attention_mask"] == 0).any()  # padding in the batch
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def test_extraction_equals_the_elastic_forward_over_random_architectures(supernet, tmp_path):
    elastic, inputs = elastic_for(supernet), _inputs()
    for i, architecture in enumerate(_architectures(12)):
        with torch.no_grad():
            sliced = elastic.forward(architecture, **inputs)
            student = elastic.extract(architecture)
            assert type(student) is BertForSequenceClassification
            assert {k: getattr(student.config, k) for k in architecture} == architecture
            torch.testing.assert_close(student(**inputs).logits, sliced, atol=1e-5, rtol=0)
        if i < 2:  # an ordinary model: it saves and loads with from_pretrained
            student.save_pretrained(tmp_path / str(i))
            loaded = BertForSequenceClassification.from_pretrained(tmp_path / str(i)).eval()
            with torch.no_grad():
                torch.testing.assert_close(loaded(**inputs).logits, sliced, atol=1e-5, rtol=0)


def test_the_full_architecture_is_the_supernet_itself(supernet):
    inputs = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(elastic_for(supernet).forward({}, **inputs), supernet(**inputs).logits,
                                   atol=1e-6, rtol=0)


def test_a_subnetwork_reads_only_its_front_slices(supernet):
    """Every supernet entry outside parameter_slices is NaN: the sub-network's output stays finite
    and unchanged, so it reads nothing else (and extraction copies nothing else)."""
    elastic, inputs = elastic_for(supernet), _inputs()
    architecture = {"hidden_size": 16, "num_attention_heads": 2, "num_hidden_layers": 2, "intermediate_size": 24}
    with torch.no_grad():
        before = elastic.forward(architecture, **inputs)
        slices = elastic.parameter_slices(architecture)
        assert "bert.encoder.layer.1.attention.self.query.weight" in slices  # 2 of 4 layers: 1 and 3
        assert "bert.encoder.layer.0.attention.self.query.weight" not in slices
        for name, param in supernet.named_parameters():
            keep = torch.zeros_like(param, dtype=torch.bool)
            if name in slices:
                keep[slices[name]] = True
            param[~keep] = float("nan")
        after = elastic.forward(architecture, **inputs)
        assert torch.isfinite(after).all()
        torch.testing.assert_close(after, before, atol=0, rtol=0)
        assert all(torch.isfinite(p).all() for p in elastic.extract(architecture).parameters())


def test_gradients_reach_only_the_used_entries(supernet):
    elastic, inputs = elastic_for(supernet.train()), _inputs()
    architecture = {"hidden_size": 8, "num_attention_heads": 2, "num_hidden_layers": 1, "intermediate_size": 8}
    elastic.forward(architecture, **inputs).sum().backward()
    slices = elastic.parameter_slices(architecture)
    for name, param in supernet.named_parameters():
        if param.grad is None:
            assert name not in slices
            continue
        outside = param.grad.clone()
        if name in slices:
            outside[slices[name]] = 0
        assert not outside.any(), name


def test_an_architecture_outside_the_supernet_is_invalid(supernet):
    elastic = elastic_for(supernet)
    with pytest.raises(InvalidArchitecture, match="hidden_size 64"):
        elastic.extract({"hidden_size": 64})
    with pytest.raises(InvalidArchitecture, match="not divisible"):
        elastic.extract({"hidden_size": 30, "num_attention_heads": 4})


@pytest.mark.parametrize("dimensions, message", [
    ({"hidden_size": [16, 64]},
     r"search\.search_space\.hidden_size: 64 is larger than the teacher's hidden_size \(32\)"),
    ({"num_attention_heads": [2, 8]}, r"num_attention_heads: 8 is larger .*keep num_attention_heads <= 4"),
    ({"num_hidden_layers": [1, 5]}, r"num_hidden_layers: 5 is larger"),
    ({"intermediate_size": [128]}, r"intermediate_size: 128 is larger"),
    ({"hidden_act": ["gelu", "relu"]},
     r"search\.search_space\.hidden_act: .*slices only .*search\.strategy: per_trial"),
    ({"hidden_size": [30], "num_attention_heads": [4]}, r"no value in \[4\] divides a hidden_size in \[30\]"),
])
def test_check_supernet_space_names_the_key_the_value_and_the_fix(dimensions, message):
    config = tiny_bert(hidden=HIDDEN, layers=LAYERS, heads=HEADS).config
    with pytest.raises(ConfigError, match=message) as error:
        check_supernet_space(config, dimensions)
    assert "\n" not in str(error.value)


def test_check_supernet_space_accepts_a_space_inside_the_teacher():
    config = tiny_bert(hidden=HIDDEN, layers=LAYERS, heads=HEADS).config
    check_supernet_space(config, {"hidden_size": [8, 16, 32], "num_attention_heads": [1, 2, 4],
                                  "num_hidden_layers": [1, 4], "intermediate_size": [8, 64]})


def test_a_model_type_without_an_elastic_forward_is_a_config_error():
    from transformers import AlbertConfig, AlbertForSequenceClassification

    with torch.device("meta"):  # ALBERT shares one layer's weights across depth: no front slices
        model = AlbertForSequenceClassification(AlbertConfig(hidden_size=32, num_attention_heads=2,
                                                             num_hidden_layers=1, intermediate_size=64))
    with pytest.raises(ConfigError, match=r"model type 'albert'.*only bert, distilbert.*search\.strategy: per_trial"):
        elastic_for(model)
    with pytest.raises(ConfigError, match="search.strategy"):
        check_supernet_space(model.config, {"hidden_size": [16]})


def tiny_distilbert() -> DistilBertForSequenceClassification:
    torch.manual_seed(4)
    config = DistilBertConfig(vocab_size=60, dim=32, n_heads=4, n_layers=3, hidden_dim=64, num_labels=3,
                              max_position_embeddings=32, dropout=0.0, attention_dropout=0.0,
                              seq_classif_dropout=0.0)
    return DistilBertForSequenceClassification._from_config(config, attn_implementation="eager").eval()


def test_distilbert_extraction_is_exact_too():
    supernet = tiny_distilbert()
    elastic, inputs = elastic_for(supernet), _inputs()
    for architecture in [{"dim": 16, "n_heads": 2, "n_layers": 1, "hidden_dim": 24},
                         {"dim": 24, "n_heads": 4, "n_layers": 2, "hidden_dim": 64},
                         {"dim": 32, "n_heads": 1, "n_layers": 3, "hidden_dim": 8}]:
        with torch.no_grad():
            student = elastic.extract(architecture)
            assert type(student) is DistilBertForSequenceClassification
            assert student.config.dim == architecture["dim"]
            torch.testing.assert_close(student(**inputs).logits, elastic.forward(architecture, **inputs),
                                       atol=1e-5, rtol=0)
    with pytest.raises(ConfigError, match=r"search\.search_space\.hidden_size: .*slices only dim, n_layers"):
        check_supernet_space(supernet.config, {"hidden_size": [16]})
