"""Each loss equals a value computed by hand on fixed tensors."""

from __future__ import annotations

import math

import pytest
import torch

from autodistill.errors import ConfigError
from autodistill.losses import LOSSES, TARGET_LOSSES, LossContext
from autodistill.losses.masking import element_mask, position_mask


def _softmax(xs: list[float], t: float = 1.0) -> list[float]:
    e = [math.exp(x / t) for x in xs]
    return [v / sum(e) for v in e]


def test_kl_with_temperature_is_batchmean_times_t_squared():
    s = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.0, -0.5]])
    t = torch.tensor([[3.0, 2.0, 1.0], [0.0, 1.0, 0.0]])
    temp = 2.0
    expected = 0.0
    for srow, trow in zip(s.tolist(), t.tolist()):
        ps, pt = _softmax(srow, temp), _softmax(trow, temp)
        expected += sum(p * math.log(p / q) for p, q in zip(pt, ps))
    expected = expected / 2 * temp ** 2  # batchmean (not mean over all elements), x T^2
    got = LOSSES.get("KL")(s, t, LossContext(temperature=temp))
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # not 'mean' reduction, which divides by the number of classes as well
    assert got.item() != pytest.approx(expected / 3, rel=1e-2)


def test_temperature_is_applied():
    s, t = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[3.0, 2.0, 1.0]])
    at_1 = LOSSES.get("KL")(s, t, LossContext(temperature=1.0)).item()
    at_4 = LOSSES.get("KL")(s, t, LossContext(temperature=4.0)).item()
    assert at_1 != pytest.approx(at_4, rel=1e-3)


def test_soft_cross_entropy_matches_hand_value():
    s = torch.tensor([[0.2, 0.8], [1.0, -1.0]])
    t = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    temp = 3.0
    expected = 0.0
    for srow, trow in zip(s.tolist(), t.tolist()):
        ps, pt = _softmax(srow, temp), _softmax(trow, temp)
        expected += -sum(p * math.log(q) for p, q in zip(pt, ps))
    expected = expected / 2 * temp ** 2
    got = LOSSES.get("CE")(s, t, LossContext(temperature=temp))
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_masked_mse_ignores_padding():
    # batch 1, seq 3 (last position padded), hidden 2
    s = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, -100.0]]])
    t = torch.tensor([[[0.0, 0.0], [3.0, 2.0], [0.0, 0.0]]])
    mask = torch.tensor([[1, 1, 0]])
    expected = (1 + 4 + 0 + 4) / 4  # mean over the 4 real elements only
    got = LOSSES.get("MSE")(s, t, LossContext(mask=mask))
    assert got.item() == pytest.approx(expected)
    unmasked = LOSSES.get("MSE")(s, t, LossContext())
    assert unmasked.item() > 1000


def test_masked_mse_on_attention_maps_drops_padded_queries_and_keys():
    s = torch.zeros(1, 1, 2, 2)
    t = torch.tensor([[[[1.0, 5.0], [7.0, 9.0]]]])
    mask = torch.tensor([[1, 0]])
    assert LOSSES.get("MSE")(s, t, LossContext(mask=mask)).item() == pytest.approx(1.0)


def test_cosine_distance_matches_hand_value_and_respects_mask():
    s = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [5.0, 5.0]]])
    t = torch.tensor([[[0.0, 1.0], [1.0, 1.0], [-5.0, 5.0]]])
    mask = torch.tensor([[1, 1, 0]])
    expected = ((1 - 0.0) + (1 - 1.0)) / 2
    assert LOSSES.get("cosine")(s, t, LossContext(mask=mask)).item() == pytest.approx(expected)
    assert LOSSES.get("cos") is LOSSES.get("cosine")


def test_kl_on_probabilities_uses_them_directly_and_masks_padded_rows():
    pt = torch.tensor([[[0.5, 0.5], [0.9, 0.1]]])
    ps = torch.tensor([[[0.25, 0.75], [0.1, 0.9]]])
    mask = torch.tensor([[1, 0]])
    ctx = LossContext(mask=mask, temperature=2.0, student_is_probs=True, teacher_is_probs=True)
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)  # row 2 is padding; no T^2
    assert LOSSES.get("KL")(ps, pt, ctx).item() == pytest.approx(expected, rel=1e-5)


def test_target_cross_entropy_hard_and_soft_labels():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    hard = TARGET_LOSSES.get("CE")(logits, torch.tensor([0, 1]), LossContext()).item()
    expected = -(math.log(_softmax([2, 0])[0]) + math.log(_softmax([0, 1])[1])) / 2
    assert hard == pytest.approx(expected, rel=1e-5)
    soft = TARGET_LOSSES.get("CE")(logits, torch.tensor([[1.0, 0.0], [0.0, 1.0]]), LossContext()).item()
    assert soft == pytest.approx(expected, rel=1e-5)


def test_masks_are_recognised_by_layout():
    mask = torch.tensor([[1, 1, 0]])
    assert position_mask(mask, torch.Size([1, 3, 8])).tolist() == [[True, True, False]]
    assert position_mask(mask, torch.Size([1, 5])) is None  # (batch, classes): no positions
    attn = element_mask(mask, torch.Size([1, 2, 3, 3]))
    assert attn.shape in ((1, 1, 3, 3), (1, 2, 3, 3))  # broadcast over heads, or one per head
    assert attn.expand(1, 2, 3, 3)[0, 0, 2].sum() == 0 and attn.expand(1, 2, 3, 3)[0, 0, 0, 2] == 0


def test_users_register_their_own_loss_and_unknown_names_list_choices():
    LOSSES.register("L1_test", lambda s, t, ctx: (s - t).abs().mean())
    try:
        assert LOSSES.get("l1_test")(torch.ones(2), torch.zeros(2), LossContext()).item() == 1.0
        with pytest.raises(ConfigError, match="already registered"):
            LOSSES.register("L1_test", lambda s, t, ctx: s.sum())
    finally:
        LOSSES.unregister("L1_test")
    with pytest.raises(ConfigError, match="allowed: .*MSE.*KL"):
        LOSSES.get("Huber")
