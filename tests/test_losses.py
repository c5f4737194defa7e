import pytest
import torch
from basicsr.losses import build_loss

from classsr_plugin import average_loss, class_loss


def original_class_loss(p):
    # the original ClassSR code's loop, M = 3
    loss = 0
    for row in p.tolist():
        loss += 2 - (abs(row[0] - row[1]) + abs(row[0] - row[2]) + abs(row[1] - row[2]))
    return loss / len(p)


def original_average_loss(p):
    b, m = len(p), 3
    sums = [sum(row[j] for row in p.tolist()) for j in range(m)]
    return sum(abs(s - b / m) for s in sums) / ((b / m) * 4)


def test_hand_computed_values():
    p = torch.tensor([[0.9, 0.05, 0.05], [0.2, 0.3, 0.5]])
    # rows: 2 - 1.7 = 0.3 and 2 - 0.6 = 1.4
    assert class_loss(p).item() == pytest.approx(0.85, abs=1e-6)
    # class sums 1.1, 0.35, 0.55 against 2/3 each, over 4 * 2/3
    assert average_loss(p).item() == pytest.approx((0.4333333 + 0.3166667 + 0.1166667) / (8 / 3), abs=1e-6)


def test_equal_to_original_code_for_three_classes():
    p = torch.rand(16, 3).softmax(1)
    assert class_loss(p).item() == pytest.approx(original_class_loss(p), abs=1e-5)
    assert average_loss(p).item() == pytest.approx(original_average_loss(p), abs=1e-5)


@pytest.mark.parametrize("m", [2, 4, 5])
def test_any_number_of_classes(m):
    onehot = torch.eye(m)[torch.arange(2 * m) % m]  # confident and balanced
    assert class_loss(onehot).item() == pytest.approx(0.0, abs=1e-6)
    assert average_loss(onehot).item() == pytest.approx(0.0, abs=1e-6)
    uniform = torch.full((8, m), 1.0 / m)  # undecided: worst class loss, balanced
    assert class_loss(uniform).item() == pytest.approx(m - 1, abs=1e-5)
    collapsed = torch.eye(m)[torch.zeros(8, dtype=torch.long)]  # everything to one class
    assert average_loss(collapsed).item() == pytest.approx(2 * (m - 1) / 4, abs=1e-5)


def test_registered_in_basicsr_with_weights():
    p = torch.rand(6, 3).softmax(1)
    assert build_loss({"type": "ClassLoss", "loss_weight": 0.5})(p).item() == pytest.approx(
        0.5 * class_loss(p).item(), rel=1e-6)
    assert build_loss({"type": "AverageLoss", "loss_weight": 3})(p).item() == pytest.approx(
        3 * average_loss(p).item(), rel=1e-6)


def test_psnr_of_an_mse_is_basicsrs_psnr():
    """The one PSNR formula of the plugin (of an MSE: pooled over tiles too) agrees with basicsr's
    PSNR of the images, which measures every whole image."""
    from basicsr.metrics.psnr_ssim import calculate_psnr_pt
    from classsr_plugin.data.prepare import psnr
    a, b = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16)
    mse = (a - b).pow(2).mean((1, 2, 3))
    assert torch.allclose(psnr(mse).double(), calculate_psnr_pt(a, b, 0), atol=1e-5)
    assert psnr(torch.tensor([1e-2, 0.0])).tolist() == [20.0, 100.0]  # 100 dB: a perfect match's floor
