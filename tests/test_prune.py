"""init_narrow 'prune': narrow branches of a plain convolution chain reconstructed from the trained
base by least squares, and a clear refusal for archs that are not such a chain."""
import pytest
import torch
import torch.nn as nn

from classsr_plugin import ClassSR
from classsr_plugin.archs.dncnn import DnCNN
from classsr_plugin.phases import PhaseSettings, slice_init
from classsr_plugin.prune import calibration_inputs, prune_init


def smooth_inputs(n=24, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size // 4, size // 4, generator=g)
    return torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False) \
        + 0.05 * torch.randn(n, 3, size, size, generator=g)


def test_pruning_reconstructs_the_base_better_than_slicing():
    torch.manual_seed(0)
    wide, x = DnCNN(num_feat=16, num_layers=5, bn=False).eval(), smooth_inputs()
    with torch.no_grad():
        target = wide(x)
        sliced = DnCNN(num_feat=8, num_layers=5, bn=False).eval()
        slice_init(sliced, wide)
        sliced_mse = float((sliced(x) - target).pow(2).mean())
        pruned = DnCNN(num_feat=8, num_layers=5, bn=False).eval()
        mse = prune_init(pruned, wide, x)
        assert mse == pytest.approx(float((pruned(x) - target).pow(2).mean()), rel=1e-4)
        assert mse < 0.5 * sliced_mse
        # at full width the least squares recover the base itself
        same = DnCNN(num_feat=16, num_layers=5, bn=False).eval()
        assert prune_init(same, wide, x, ridge=1e-10) < 1e-9


class Residual(nn.Module):  # a skip: conv 2's input is not a function of conv 1's output alone
    def __init__(self, c=8):
        super().__init__()
        self.a, self.b, self.c = nn.Conv2d(3, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, x):
        h = torch.relu(self.a(x))
        return self.c(h + torch.relu(self.b(h)))


@pytest.mark.parametrize("wide,narrow,match", [
    (Residual(8), Residual(4), "not an elementwise function"),
    (DnCNN(num_feat=8, num_layers=4, bn=True), DnCNN(num_feat=4, num_layers=4, bn=True), "BatchNorm2d"),
    (DnCNN(num_feat=8, num_layers=4, bn=False), DnCNN(num_feat=4, num_layers=5, bn=False), "5 convolutions"),
])
def test_what_is_not_a_plain_chain_is_refused_by_name(wide, narrow, match):
    with pytest.raises(ValueError, match=match):
        prune_init(narrow.eval(), wide.eval(), smooth_inputs(4))


def test_pixel_shuffle_is_not_a_chain():
    from basicsr.archs.srresnet_arch import MSRResNet
    wide, narrow = MSRResNet(num_feat=8, num_block=1, upscale=2), MSRResNet(num_feat=4, num_block=1, upscale=2)
    with pytest.raises(ValueError, match="not a plain chain|not an elementwise"):
        prune_init(narrow.eval(), wide.eval(), smooth_inputs(2))


def test_prune_settings_need_a_base_and_data(tmp_path):
    with pytest.raises(ValueError, match="prune_data"):
        PhaseSettings(phase="branches", init_narrow="prune")
    with pytest.raises(ValueError, match="for init_narrow: prune"):
        PhaseSettings(phase="branches", init_narrow="slice", prune_data=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="prune_data"):
        calibration_inputs(str(tmp_path))  # no images


def test_init_weights_prunes_every_narrow_branch(tmp_path):
    from classsr_plugin.imageio import write_picture
    torch.manual_seed(0)
    base = {"type": "DnCNN", "num_feat": 16, "num_layers": 4, "bn": False}
    trained = DnCNN(num_feat=16, num_layers=4, bn=False)
    torch.save(trained.state_dict(), tmp_path / "base.pth")
    (tmp_path / "lq").mkdir()
    for i, img in enumerate(smooth_inputs(6).clamp(0, 1)):
        write_picture(str(tmp_path / "lq" / f"{i}.png"), img)
    model = ClassSR(base=base, widths=[6, 10, 16])
    logs = []
    PhaseSettings(phase="branches", init_base=str(tmp_path / "base.pth"), init_narrow="prune",
                  prune_data=str(tmp_path / "lq")).init_weights(model, logs.append)
    x = calibration_inputs(str(tmp_path / "lq"))
    assert len(x) == 6 and "pruned from the widest on 6 inputs" in logs[-1]
    with torch.no_grad():
        errs = [float((b.eval()(x) - trained.eval()(x)).pow(2).mean()) for b in model.branches]
    assert errs[2] == 0 and 0 < errs[1] < errs[0]  # the widest is the base; wider narrow branches reconstruct it closer
