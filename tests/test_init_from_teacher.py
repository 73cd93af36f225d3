"""init_from_teacher: which teacher weights land where, sliced how, and what is left alone."""

from __future__ import annotations

import pytest
import torch
from conftest import VOCAB, tiny_bert
from torch import nn
from transformers import BertForMaskedLM, BertForPreTraining, BertForSequenceClassification, BertModel

from autodistill.errors import ConfigError
from autodistill.models.init_from_teacher import InitReport, init_from_teacher

LAYER_PARTS = (
    "attention.self.query", "attention.self.key", "attention.self.value",
    "attention.output.dense", "attention.output.LayerNorm",
    "intermediate.dense", "output.dense", "output.LayerNorm",
)
EMBEDDINGS = ("word_embeddings", "position_embeddings", "token_type_embeddings", "LayerNorm")


def bert(*, seed: int, layers: int = 4, labels: int = 3, **sizes) -> nn.Module:
    """The file's models: the shared tiny BERT with 4 layers and 3 labels unless given, in eval mode."""
    return tiny_bert(seed=seed, layers=layers, labels=labels, **sizes).eval()


@pytest.fixture(scope="module")
def teacher() -> BertForSequenceClassification:
    return bert(seed=0)  # hidden 32, 4 layers, 4 heads of 8, intermediate 64, 3 labels


def params(model: nn.Module) -> dict[str, torch.Tensor]:
    return dict(model.named_parameters())


def per_head_rows(weight: torch.Tensor, teacher_head_dim: int, heads: int, head_dim: int) -> torch.Tensor:
    """Rows of heads 0..heads-1, dims 0..head_dim-1 of a [teacher_heads * teacher_head_dim, ...] tensor."""
    return torch.cat([weight[h * teacher_head_dim: h * teacher_head_dim + head_dim] for h in range(heads)])


def batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(1, VOCAB, (4, 10), generator=g)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def test_same_width_student_takes_evenly_spaced_layers_exactly(teacher):
    """A 2-layer student of the teacher's width gets teacher layers 1 and 3 and the embeddings, unsliced."""
    student = bert(seed=1, layers=2)
    report = init_from_teacher(student, teacher)
    assert isinstance(report, InitReport)
    assert report.layer_map == (1, 3)
    assert report.sliced == ()
    s, t = params(student), params(teacher)
    for part in EMBEDDINGS:
        for kind in (("weight", "bias") if part == "LayerNorm" else ("weight",)):
            name = f"bert.embeddings.{part}.{kind}"
            assert torch.equal(s[name], t[name]), name
            assert name in report.copied
    for i, source in enumerate((1, 3)):
        for part in LAYER_PARTS:
            for kind in ("weight", "bias"):
                name = f"bert.encoder.layer.{i}.{part}.{kind}"
                assert torch.equal(s[name], t[f"bert.encoder.layer.{source}.{part}.{kind}"]), name
                assert name in report.copied
    for name in ("bert.pooler.dense.weight", "classifier.weight", "classifier.bias"):
        assert torch.equal(s[name], t[name]), name
    assert report.skipped == ()


def test_explicit_layer_map_picks_the_given_layers(teacher):
    """layer_map=[0, 2] copies teacher layers 0 and 2, not the default 1 and 3."""
    student = bert(seed=1, layers=2)
    report = init_from_teacher(student, teacher, layer_map=[0, 2])
    assert report.layer_map == (0, 2)
    s, t = params(student), params(teacher)
    for i, source in enumerate((0, 2)):
        for part in LAYER_PARTS:
            name = f"bert.encoder.layer.{i}.{part}.weight"
            assert torch.equal(s[name], t[f"bert.encoder.layer.{source}.{part}.weight"]), name
    assert not torch.equal(s["bert.encoder.layer.1.attention.self.query.weight"],
                           t["bert.encoder.layer.3.attention.self.query.weight"])


@pytest.mark.parametrize("layer_map", [[0], [0, 1, 2], [0, 4], [-1, 0]])
def test_bad_layer_map_is_a_config_error(teacher, layer_map):
    """A layer_map of the wrong length or naming a layer the teacher lacks is rejected."""
    with pytest.raises(ConfigError, match="layer_map"):
        init_from_teacher(bert(seed=1, layers=2), teacher, layer_map=layer_map)


def test_narrower_student_takes_the_first_heads_dims_and_units(teacher):
    """Hidden 16, 2 heads of 8, intermediate 32: the first 2 teacher heads, first 16 dims, first 32 units."""
    student = bert(seed=1, hidden=16, layers=2, heads=2, intermediate=32)
    report = init_from_teacher(student, teacher)
    s, t = params(student), params(teacher)
    src = "bert.encoder.layer.1."  # student layer 0 <- teacher layer 1
    tq = t[src + "attention.self.query.weight"]
    expected_q = torch.cat([tq[0:8, :16], tq[8:16, :16]])  # teacher heads 0 and 1, first 16 input dims
    assert torch.equal(s["bert.encoder.layer.0.attention.self.query.weight"], expected_q)
    assert torch.equal(s["bert.encoder.layer.0.attention.self.value.bias"],
                       t[src + "attention.self.value.bias"][:16])
    assert torch.equal(s["bert.encoder.layer.0.attention.output.dense.weight"],
                       t[src + "attention.output.dense.weight"][:16, :16])
    for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
        for kind in ("weight", "bias"):
            assert torch.equal(s[f"bert.encoder.layer.0.{ln}.{kind}"], t[f"{src}{ln}.{kind}"][:16])
    assert torch.equal(s["bert.embeddings.LayerNorm.weight"], t["bert.embeddings.LayerNorm.weight"][:16])
    assert torch.equal(s["bert.embeddings.word_embeddings.weight"],
                       t["bert.embeddings.word_embeddings.weight"][:, :16])
    assert torch.equal(s["bert.encoder.layer.0.intermediate.dense.weight"],
                       t[src + "intermediate.dense.weight"][:32, :16])
    assert torch.equal(s["bert.encoder.layer.0.intermediate.dense.bias"], t[src + "intermediate.dense.bias"][:32])
    assert torch.equal(s["bert.encoder.layer.0.output.dense.weight"], t[src + "output.dense.weight"][:16, :32])
    assert torch.equal(s["bert.pooler.dense.weight"], t["bert.pooler.dense.weight"][:16, :16])
    assert torch.equal(s["classifier.weight"], t["classifier.weight"][:, :16])  # 3 labels each
    assert "bert.encoder.layer.0.attention.self.query.weight" in report.sliced
    assert "bert.embeddings.LayerNorm.weight" in report.sliced
    assert set(report.sliced) <= set(report.copied)
    assert "classifier.bias" in report.copied and "classifier.bias" not in report.sliced  # shape [3] as is


def test_smaller_head_dim_slices_within_each_head(teacher):
    """Hidden 16 as 4 heads of 4: each student head takes the first 4 dims of the same teacher head."""
    student = bert(seed=1, hidden=16, layers=2, heads=4, intermediate=32)
    init_from_teacher(student, teacher)
    s, t = params(student), params(teacher)
    src = "bert.encoder.layer.1."
    for proj in ("query", "key", "value"):
        tw = t[f"{src}attention.self.{proj}.weight"]
        expected = torch.cat([tw[h * 8: h * 8 + 4, :16] for h in range(4)])
        got = s[f"bert.encoder.layer.0.attention.self.{proj}.weight"]
        assert torch.equal(got, expected), proj
        assert not torch.equal(got, tw[:16, :16])  # the naive first-16-rows slice is something else
        tb = t[f"{src}attention.self.{proj}.bias"]
        assert torch.equal(s[f"bert.encoder.layer.0.attention.self.{proj}.bias"],
                           per_head_rows(tb, 8, 4, 4))
    # the attention output's input axis is laid out by head too
    cols = torch.cat([torch.arange(h * 8, h * 8 + 4) for h in range(4)])
    assert torch.equal(s["bert.encoder.layer.0.attention.output.dense.weight"],
                       t[src + "attention.output.dense.weight"][:16][:, cols])


def test_outputs_change_and_an_identical_student_reproduces_the_teacher(teacher):
    """Init changes a fresh student's logits; a same-size student copied layer for layer equals the teacher."""
    inputs = batch()
    with torch.no_grad():
        teacher_logits = teacher(**inputs).logits
        fresh = bert(seed=1, hidden=16, layers=2, heads=2, intermediate=32)
        fresh_logits = fresh(**inputs).logits
        initialised = bert(seed=1, hidden=16, layers=2, heads=2, intermediate=32)
        init_from_teacher(initialised, teacher)
        assert not torch.allclose(initialised(**inputs).logits, fresh_logits)

        twin = bert(seed=5)
        assert not torch.allclose(twin(**inputs).logits, teacher_logits)
        report = init_from_teacher(twin, teacher, layer_map=[0, 1, 2, 3])
        assert report.skipped == () and report.sliced == ()
        assert torch.equal(twin(**inputs).logits, teacher_logits)


def test_classifier_with_other_label_count_and_unknown_parameters_stay_fresh(teacher):
    """A 2-label classifier cannot take the 3-label teacher's; an extra module is left alone and reported."""
    student = bert(seed=1, layers=2, labels=2)
    student.extra = nn.Linear(2, 2)
    before = {k: v.clone() for k, v in params(student).items()}
    report = init_from_teacher(student, teacher)
    assert set(report.skipped) == {"classifier.weight", "classifier.bias", "extra.weight", "extra.bias"}
    s = params(student)
    for name in report.skipped:
        assert torch.equal(s[name], before[name]), name
        assert name not in report.copied
    assert "bert.pooler.dense.weight" in report.copied


def test_a_masked_lm_student_takes_the_teachers_mlm_head_sliced_to_its_width():
    """The MLM head outside the base model (transform dense and LayerNorm, the output bias) comes
    from the teacher, sliced to a narrower student; a same-size student copied layer for layer
    predicts the teacher's tokens exactly. Undone, every head tensor would stay random."""
    teacher = bert(seed=0, cls=BertForMaskedLM)
    student = bert(seed=1, cls=BertForMaskedLM, hidden=16, layers=2, heads=2, intermediate=32)
    report = init_from_teacher(student, teacher)
    assert report.skipped == ()
    s, t = params(student), params(teacher)
    head = "cls.predictions.transform"
    assert torch.equal(s[f"{head}.dense.weight"], t[f"{head}.dense.weight"][:16, :16])
    assert torch.equal(s[f"{head}.LayerNorm.bias"], t[f"{head}.LayerNorm.bias"][:16])
    assert torch.equal(s["cls.predictions.bias"], t["cls.predictions.bias"])
    assert "cls.predictions.transform.dense.weight" in report.sliced
    assert student.get_output_embeddings().weight is student.bert.embeddings.word_embeddings.weight  # still tied

    twin = bert(seed=5, cls=BertForMaskedLM)
    init_from_teacher(twin, teacher, layer_map=[0, 1, 2, 3])
    with torch.no_grad():
        assert torch.equal(twin(**batch()).logits, teacher(**batch()).logits)


def test_the_token_indexed_mlm_head_stays_fresh_without_a_shared_vocabulary():
    """With a tokenizer of the student's own, the output bias (and an untied decoder: one row per
    token id) keep their fresh weights; the transform, which reads hidden states, is copied; a
    pre-training student also takes the next-sentence head."""
    teacher = bert(seed=0, cls=BertForPreTraining, tie_word_embeddings=False)
    student = bert(seed=1, cls=BertForPreTraining, layers=2, tie_word_embeddings=False)
    before = {k: v.clone() for k, v in params(student).items()}
    report = init_from_teacher(student, teacher, shared_vocabulary=False)
    by_token = {"bert.embeddings.word_embeddings.weight", "cls.predictions.bias",
                "cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
    assert by_token <= set(params(student))
    assert set(report.skipped) == by_token
    s, t = params(student), params(teacher)
    for name in by_token:
        assert torch.equal(s[name], before[name]), name
    for name in ("cls.predictions.transform.dense.weight", "cls.seq_relationship.weight", "cls.seq_relationship.bias"):
        assert torch.equal(s[name], t[name]), name


def test_base_model_student_from_a_classifier_teacher(teacher):
    """The base prefix is found per model: a BertModel ('' prefix) fills from 'bert.' of the teacher."""
    student = bert(seed=1, cls=BertModel, layers=2)
    report = init_from_teacher(student, teacher)
    s, t = params(student), params(teacher)
    assert torch.equal(s["encoder.layer.1.output.dense.weight"], t["bert.encoder.layer.3.output.dense.weight"])
    assert torch.equal(s["embeddings.word_embeddings.weight"], t["bert.embeddings.word_embeddings.weight"])
    assert report.skipped == ()


def test_wider_student_is_a_config_error_naming_the_parameter(teacher):
    """Hidden 48 > 32 cannot be filled: ConfigError names the parameter, both shapes and the fix."""
    student = bert(seed=1, hidden=48, layers=2, heads=4, intermediate=64)
    before = {k: v.clone() for k, v in params(student).items()}
    with pytest.raises(ConfigError) as error:
        init_from_teacher(student, teacher)
    message = str(error.value)
    assert "'bert.embeddings.word_embeddings.weight'" in message
    assert "(60, 48)" in message and "(60, 32)" in message
    assert "init_from_teacher: false" in message
    # checked before copying: nothing was half-initialised
    assert all(torch.equal(v, before[k]) for k, v in params(student).items())


def test_fewer_wider_heads_take_the_first_rows(teacher):
    """Hidden 16 as 1 head of 16 (teacher heads are 8 wide): consecutive teacher heads 0 and 1
    become the student's one head, i.e. the first 16 rows."""
    student = bert(seed=1, hidden=16, layers=2, heads=1, intermediate=32)
    init_from_teacher(student, teacher)
    t_q = teacher.bert.encoder.layer[1].attention.self.query.weight
    assert torch.equal(student.bert.encoder.layer[0].attention.self.query.weight, t_q[:16, :16])


def test_more_narrower_heads_than_the_teacher_take_the_first_rows(teacher):
    """Hidden 32 as 8 heads of 4 (the teacher has 4 of 8): the first 32 rows, each teacher head
    split across two student heads."""
    student = bert(seed=1, hidden=32, layers=2, heads=8, intermediate=64)
    init_from_teacher(student, teacher)
    t_k = teacher.bert.encoder.layer[1].attention.self.key.weight
    assert torch.equal(student.bert.encoder.layer[0].attention.self.key.weight, t_k)


def test_larger_vocabulary_is_a_config_error(teacher):
    """A vocabulary the teacher lacks cannot be filled from it."""
    student = bert(seed=1, layers=2, vocab=VOCAB + 10)
    with pytest.raises(ConfigError, match=r"word_embeddings\.weight.*\(70, 32\).*\(60, 32\)"):
        init_from_teacher(student, teacher)


def test_teacher_tensors_are_copied_not_shared(teacher):
    """Changing every student parameter after init leaves the teacher's weights as they were."""
    student = bert(seed=1, layers=4)  # same shapes everywhere: the case where aliasing could happen
    snapshot = {k: v.clone() for k, v in params(teacher).items()}
    init_from_teacher(student, teacher)
    teacher_storage = {p.untyped_storage().data_ptr() for p in teacher.parameters()}
    with torch.no_grad():
        for p in student.parameters():
            assert p.untyped_storage().data_ptr() not in teacher_storage
            p.add_(1.0)
    for name, value in params(teacher).items():
        assert torch.equal(value, snapshot[name]), name
