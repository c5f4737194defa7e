import pytest
import torch

from classsr_plugin import ClassSR
from classsr_plugin.cost import route_under_budget

FLOPS = [20, 35, 50]


def test_budget_extremes_and_monotone_cost():
    logits = torch.randn(500, 3)
    assert (route_under_budget(logits, FLOPS, 1.0) == 2).all()
    assert (route_under_budget(logits, FLOPS, 0.4) == 0).all()  # 20/50: the narrowest's ratio
    cost = torch.tensor(FLOPS) / 50
    prev_cost, prev_idx = 0.0, None
    for budget in torch.linspace(0.4, 1.0, 25).tolist():
        idx = route_under_budget(logits, FLOPS, budget)
        avg = cost[idx].mean().item()
        assert avg <= budget + 1e-6
        assert avg >= prev_cost - 1e-6
        if prev_idx is not None:  # no tile ever moves to a cheaper branch as the budget grows
            assert (idx >= prev_idx).all()
        prev_cost, prev_idx = avg, idx


def test_budget_is_a_target_around_the_classifiers_choice():
    # tile 0 is unsure between classes 0 and 1; the others are sure
    logits = torch.tensor([[2.0, 1.5, 0], [0, 5.0, 0], [0, 0, 8.0]])
    assert route_under_budget(logits, FLOPS, 0.7).tolist() == [0, 1, 2]  # its own cost: unchanged
    assert route_under_budget(logits, FLOPS, 0.8).tolist() == [1, 1, 2]  # the unsure tile moves up
    low = route_under_budget(logits, FLOPS, 0.6)
    assert (low <= torch.tensor([0, 1, 2])).all() and low.tolist() != [0, 1, 2]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = ClassSR(base=dict(type="FSRCNN", d=56, upscale=4)).eval()
    with torch.no_grad():
        m.classifier.fc.weight.normal_(0, 3)
    return m


def test_restore_image_budget_equals_forced_extremes(model):
    img = torch.rand(3, 90, 70)
    wide = model.restore_image(img, budget=1.0)
    narrow = model.restore_image(img, budget=0.0)
    assert torch.equal(wide.image, model.restore_image(img, force_class=2).image)
    assert torch.equal(narrow.image, model.restore_image(img, force_class=0).image)
    mid = model.restore_image(img, budget=0.7)
    cost = model.tile_cost(32)
    branch_avg = sum(c * f for c, f in zip(mid.counts, cost.branches)) / sum(mid.counts)
    assert branch_avg <= 0.7 * cost.base + 1e-6
    assert narrow.flops_per_tile <= mid.flops_per_tile <= wide.flops_per_tile
