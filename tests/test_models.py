"""The built-in student builder: the teacher's config with keys replaced, for BERT, DistilBERT, MobileBERT."""

from __future__ import annotations

import pytest
from conftest import tiny_bert_config
from transformers import BertConfig, DistilBertConfig, MobileBertConfig

from autodistill.errors import ConfigError, InvalidArchitecture
from autodistill.models import build_student, model_class
from autodistill.models.builders import check_architecture, student_config


def test_bert_keys_are_replaced_with_fresh_weights():
    base = tiny_bert_config(vocab=50, layers=4, labels=3, dropout=None)
    student = build_student(base, {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2},
                            model_cls="AutoModelForSequenceClassification")
    assert (student.config.hidden_size, student.config.num_hidden_layers, student.config.num_labels) == (16, 1, 3)
    assert base.hidden_size == 32  # the teacher's config is untouched


def test_distilbert_keys():
    base = DistilBertConfig(vocab_size=50, dim=32, n_layers=3, n_heads=4, hidden_dim=64, num_labels=2)
    student = build_student(base, {"dim": 16, "n_layers": 1, "n_heads": 2, "hidden_dim": 32},
                            model_cls="AutoModelForSequenceClassification")
    assert (student.config.dim, student.config.n_layers) == (16, 1)
    assert len(student.distilbert.transformer.layer) == 1


def test_mobilebert_keys_from_seed_003():
    base = MobileBertConfig(vocab_size=50, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=64, embedding_size=32, intra_bottleneck_size=32, true_hidden_size=32)
    arch = {"hidden_size": 32, "intra_bottleneck_size": 16, "num_attention_heads": 2,
            "intermediate_size": 32, "num_feedforward_networks": 2}
    student = build_student(base, arch, model_cls="AutoModelForSequenceClassification")
    assert student.config.num_feedforward_networks == 2 and student.config.intra_bottleneck_size == 16


def test_unknown_key_names_the_config_and_the_nearest_key():
    with pytest.raises(ConfigError, match="BertConfig has no key 'hidden_sise'.*did you mean 'hidden_size'"):
        student_config(BertConfig(), {"hidden_sise": 16})


def test_heads_that_do_not_divide_the_width_are_an_invalid_architecture():
    with pytest.raises(InvalidArchitecture, match="not divisible"):
        check_architecture(BertConfig(hidden_size=30, num_attention_heads=4))
    check_architecture(BertConfig(hidden_size=32, num_attention_heads=4))


def test_unknown_model_class_lists_common_choices():
    with pytest.raises(ConfigError, match="AutoModelForSequenceClassification"):
        model_class("AutoModelForSequenceClasification")
