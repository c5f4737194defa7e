import pytest
import torch

from classsr_plugin import ClassSR
from classsr_plugin.cost import route_under_budget

FLOPS = [20, 35, 50]


def test_target_budget_extremes_and_monotone_cost():
    logits = torch.randn(500, 3)
    assert (route_under_budget(logits, FLOPS, 1.0, mode="target") == 2).all()
    assert (route_under_budget(logits, FLOPS, 0.4, mode="target") == 0).all()  # 20/50: the narrowest's ratio
    cost = torch.tensor(FLOPS) / 50
    prev_cost, prev_idx = 0.0, None
    for budget in torch.linspace(0.4, 1.0, 25).tolist():
        idx = route_under_budget(logits, FLOPS, budget, mode="target")
        avg = cost[idx].mean().item()
        assert avg <= budget + 1e-6
        assert avg >= prev_cost - 1e-6
        if prev_idx is not None:  # no tile ever moves to a cheaper branch as the budget grows
            assert (idx >= prev_idx).all()
        prev_cost, prev_idx = avg, idx


def test_budget_is_a_target_around_the_classifiers_choice():
    # tile 0 is unsure between classes 0 and 1; the others are sure
    logits = torch.tensor([[2.0, 1.5, 0], [0, 5.0, 0], [0, 0, 8.0]])
    assert route_under_budget(logits, FLOPS, 0.7, mode="target").tolist() == [0, 1, 2]  # its own cost: unchanged
    assert route_under_budget(logits, FLOPS, 0.8, mode="target").tolist() == [1, 1, 2]  # the unsure tile moves up
    low = route_under_budget(logits, FLOPS, 0.6, mode="target")
    assert (low <= torch.tensor([0, 1, 2])).all() and low.tolist() != [0, 1, 2]


def test_budget_is_a_ceiling_by_default():
    """A user reads a budget as a ceiling: never above it (unless even the narrowest branch
    everywhere costs more), never above the classifier's own routing, tile by tile."""
    torch.manual_seed(3)
    logits = torch.randn(400, 3)
    own = logits.argmax(1)
    cost = torch.tensor(FLOPS, dtype=torch.float64) / 50
    own_cost = cost[own].mean().item()
    for budget in (0.3, 0.45, 0.6, own_cost, 0.9, 1.0, 2.0):
        idx = route_under_budget(logits, FLOPS, budget)
        assert (idx <= own).all()
        assert cost[idx].mean().item() <= max(budget, 0.4) + 1e-6
        if budget >= own_cost:
            assert torch.equal(idx, own)
    # the caller's own cost measure (e.g. with margins): the ceiling holds on it
    heavy = lambda idx: float(cost[idx].mean()) * 1.1 + 0.02  # noqa: E731
    for budget in (0.5, 0.7, 0.9):
        assert heavy(route_under_budget(logits, FLOPS, budget, cost=heavy)) <= budget


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = ClassSR(base=dict(type="FSRCNN", d=56, upscale=4)).eval()
    with torch.no_grad():
        m.classifier.fc.weight.normal_(0, 3)
    return m


def test_restore_image_budget_equals_forced_extremes(model):
    img = torch.rand(3, 90, 70)
    wide = model.restore_image(img, budget=2.0, budget_mode="target", execution="tiles")
    narrow = model.restore_image(img, budget=0.0)
    assert torch.equal(wide.image, model.restore_image(img, force_class=2, execution="tiles").image)
    assert torch.equal(narrow.image, model.restore_image(img, force_class=0).image)
    mid = model.restore_image(img, budget=0.7, budget_mode="target", execution="tiles")
    cost = model.tile_cost(32)
    branch_avg = sum(c * f for c, f in zip(mid.counts, cost.branches)) / sum(mid.counts)
    assert branch_avg <= 0.7 * cost.base + 1e-6
    assert narrow.flops_per_tile <= mid.flops_per_tile <= wide.flops_per_tile


@pytest.mark.parametrize("execution", ["regions", "tiles"])
def test_restore_image_budget_bounds_what_is_reported(model, execution):
    """The reported FLOPs (margins and classifier included) never pass the budget, nor the
    image's own routing."""
    torch.manual_seed(4)
    # cells of different contrast and brightness: the budget moves some of them, not all
    img = (torch.rand(3, 150, 190) * torch.rand(1, 5, 6).repeat_interleave(32, 1).repeat_interleave(32, 2)[:, :150, :190]
           + torch.rand(3, 5, 6).repeat_interleave(32, 1).repeat_interleave(32, 2)[:, :150, :190]) / 2
    own = model.restore_image(img, execution=execution)
    assert own.flops_percent > 100  # every budget below binds (the paper's classifier costs 15% here)
    floor = model.restore_image(img, execution=execution, budget=0.0)  # the narrowest + the classifier
    assert (floor.class_map == 0).all()
    for budget in (0.5, 0.7, 0.9, 1.0):
        res = model.restore_image(img, execution=execution, budget=budget)
        assert res.flops_percent <= max(100 * budget, floor.flops_percent) + 1e-6
        assert res.flops_percent <= own.flops_percent + 1e-6
        assert (res.class_map <= own.class_map).all()
