"""What must not change an output: the batch size, the memory layout; and the routing hooks."""
import torch

from classsr_plugin import ClassSR


def _model(**kw):
    torch.manual_seed(0)
    return ClassSR(base=dict(type="FSRCNN", d=56), **kw).eval()


def test_output_does_not_depend_on_the_batch():
    model = _model()
    img = torch.rand(3, 90, 130)
    one, many = model.restore_image(img, batch=1), model.restore_image(img, batch=64)
    assert torch.equal(one.class_map, many.class_map)
    assert torch.allclose(one.image, many.image, atol=1e-5)


def test_memory_layout_does_not_change_the_output():
    cl = _model(channels_last=True)
    plain = _model(channels_last=False)
    plain.load_state_dict(cl.state_dict())
    img = torch.rand(3, 70, 70)
    for execution in ("tiles", "regions"):
        a = cl.restore_image(img, execution=execution)
        b = plain.restore_image(img, execution=execution)
        assert torch.equal(a.class_map, b.class_map)
        assert torch.allclose(a.image, b.image, atol=1e-5)


def test_logit_bias_moves_the_routing():
    model = _model()
    img = torch.rand(3, 70, 70)
    biased = model.restore_image(img, logit_bias=torch.tensor([100.0, 0.0, 0.0]))
    assert biased.counts == [biased.class_map.numel(), 0, 0]
    assert torch.equal(biased.image, model.restore_image(img, force_class=0).image)
