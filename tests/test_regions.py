"""Region execution: cells merged into rectangles, each run with context and blended, so the
output equals the whole-image run wherever the margin covers the receptive field."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from classsr_plugin import ClassSR, register_arch
from classsr_plugin.execution import Execution
from classsr_plugin.regions import CellGrid, merge_cells, plan, run_regions


def _nearest(x):
    return F.interpolate(x, scale_factor=4, mode="nearest")


def test_rectangles_cover_every_cell_once_with_one_class():
    torch.manual_seed(0)
    cm = torch.randint(0, 3, (9, 13))
    cm[2:8, 3:12] = 1  # a large block of one class
    rects = merge_cells(cm, max_cells=4)
    seen = torch.zeros_like(cm)
    for k, r, c, h, w in rects:
        assert h <= 4 and w <= 4
        assert (cm[r:r + h, c:c + w] == k).all()
        seen[r:r + h, c:c + w] += 1
    assert (seen == 1).all()
    assert max(h * w for _, _, _, h, w in rects) == 16  # the block became 4x4 pieces


@pytest.mark.parametrize("h,w,tile", [(70, 97, 16), (5, 40, 32), (64, 64, 32)])
def test_regions_reproduce_the_whole_image_where_the_margin_covers_the_receptive_field(h, w, tile):
    torch.manual_seed(1)
    img = torch.rand(3, h, w)
    grid = CellGrid(h, w, tile)
    class_map = torch.randint(0, 3, grid.shape)
    conv = torch.nn.Conv2d(3, 3, 5, padding=2)  # receptive field: 2 px each side
    with torch.no_grad():
        def net(x):
            return _nearest(conv(x))
        whole = net(img[None])[0]
        wide, none = Execution(margin=4, max_cells=3), Execution(margin=0, max_cells=3)
        calls = plan(grid, merge_cells(class_map, 3), wide)
        exact = run_regions(img, grid, calls, [net] * 3, 4, 3, wide)
        cut = run_regions(img, grid, plan(grid, merge_cells(class_map, 3), none), [net] * 3, 4, 3, none)
    assert exact.shape == (3, 4 * h, 4 * w)
    assert torch.allclose(exact, whole, atol=1e-5)
    if len(merge_cells(class_map, 3)) > 1:
        assert not torch.allclose(cut, whole, atol=1e-3)  # no context: the cut receptive field shows
    # each window's pixels: its rectangle and the margin as far as the image goes
    assert sum(c.pixels for c in calls) == sum((w.win[1] - w.win[0]) * (w.win[3] - w.win[2])
                                               for c in calls for w in c.windows)


def test_restore_image_in_regions():
    torch.manual_seed(0)
    model = ClassSR(base=dict(type="FSRCNN", d=56, upscale=4)).eval()
    for h, w in ((1, 1), (31, 33), (123, 77)):
        res = model.restore_image(torch.rand(3, h, w), execution="regions")
        assert res.image.shape == (3, 4 * h, 4 * w)
        assert res.class_map.shape == CellGrid(h, w, 32).shape and sum(res.counts) == res.class_map.numel()
    img = torch.rand(3, 100, 130)
    widest = model.restore_image(img, execution="regions", force_class=2, margin=8)
    with torch.no_grad():
        whole = model.branches[2](img[None])[0]
    assert torch.allclose(widest.image, whole, atol=1e-4)  # FSRCNN's receptive field fits in 8 px
    # FLOPs against the base on the whole image: one rectangle holds it all here, so no overhead;
    # smaller rectangles pay their margins (forced routing: no classifier)
    assert widest.flops_percent == pytest.approx(100)
    small = model.restore_image(img, execution="regions", force_class=2, margin=8, max_cells=2)
    windows = [(min(b + 8, 100) - max(a - 8, 0)) for a, b in ((0, 64), (64, 100))]
    cols = [(min(b + 8, 130) - max(a - 8, 0)) for a, b in ((0, 64), (64, 128), (128, 130))]
    assert small.flops_percent == pytest.approx(100 * sum(windows) * sum(cols) / (100 * 130))
    cells = CellGrid(100, 130, 32)
    assign = torch.arange(len(cells)) % 3
    res = model.restore_image(img, execution="regions", force_class=assign, coarsen=False)
    assert res.class_map.view(-1).tolist() == assign.tolist()
    coarse = model.restore_image(img, execution="regions", force_class=assign)  # cells only move up
    assert (coarse.class_map.view(-1) >= assign).all()
    with pytest.raises(ValueError, match="execution"):
        model.restore_image(img, execution="tile")


@pytest.mark.parametrize("h,w,margin", [(96, 160, 2), (100, 130, 4), (70, 97, 4)])
def test_blend_weights_sum_to_one(h, w, margin):
    """Branches that output a constant give that constant back everywhere, whichever rectangle
    a pixel's weights come from (70x97: a 6 px last cell, too narrow for two ramps: the weights
    are then summed and divided by); different constants blend between them, never beyond."""
    torch.manual_seed(2)
    img = torch.rand(3, h, w)
    grid = CellGrid(h, w, 32)
    ex = Execution(margin=margin, max_cells=2)
    calls = plan(grid, merge_cells(torch.randint(0, 3, grid.shape), 2), ex)

    def const(v):
        return lambda x: torch.full((x.shape[0], 3, x.shape[2] * 2, x.shape[3] * 2), v)
    ones = run_regions(img, grid, calls, [const(1.0)] * 3, 2, 3, ex)
    assert torch.allclose(ones, torch.ones_like(ones), atol=1e-6)
    mixed = run_regions(img, grid, calls, [const(1.0), const(2.0), const(3.0)], 2, 3, ex)
    assert mixed.min() >= 1 - 1e-6 and mixed.max() <= 3 + 1e-6
    assert (mixed - mixed.round()).abs().max() > 0.1  # blended across the borders, not cut


@pytest.mark.parametrize("h,w,margin,zero", [(300, 170, 2, False), (200, 97, 4, True), (150, 70, 0, False)])
def test_blocks_of_rows_give_the_one_block_output_in_float_and_in_uint8(monkeypatch, h, w, margin, zero):
    """The output blended a block of rows at a time (1 cell high here: windows cross blocks,
    calls are cut at block starts) equals the output blended at once; uint8 is that output
    rounded; 200x97 has a 1 px last column (weights summed and divided by) and a zero class."""
    from classsr_plugin import regions
    torch.manual_seed(3)
    model = ClassSR(base=dict(type="FSRCNN", d=56, upscale=4, residual=True), zero_class=zero).eval()
    with torch.no_grad():
        for b in model.branches:
            torch.nn.init.normal_(b.last.weight, std=0.05)
    img = torch.rand(3, h, w)
    classes = torch.randint(0, model.num_classes, (len(CellGrid(h, w, 32)),))
    runs = {}
    for size in (2 ** 40, 1):
        monkeypatch.setattr(regions, "BLOCK_BYTES", size)
        for dtype in (torch.float32, torch.uint8):
            with torch.no_grad():
                runs[size, dtype] = model.restore_image(img, margin=margin, force_class=classes, dtype=dtype).image
    assert regions.block_rows(CellGrid(h, w, 32), 4, 3) == 32  # blocks of one cell row: several
    assert torch.allclose(runs[1, torch.float32], runs[2 ** 40, torch.float32], atol=1e-6)
    assert runs[1, torch.uint8].dtype == torch.uint8
    assert torch.equal(runs[1, torch.uint8], runs[2 ** 40, torch.uint8])
    rounded = runs[2 ** 40, torch.float32].clamp(0, 1).mul(255).round()
    assert torch.equal(runs[1, torch.uint8].float(), rounded)


def test_a_nan_output_is_an_error_in_uint8_not_a_black_patch():
    model = ClassSR(base=dict(type="FSRCNN", d=16, upscale=4)).eval()
    with torch.no_grad():
        model.branches[-1].last.bias.fill_(float("nan"))
        with pytest.raises(ValueError, match="NaN or Inf"):
            model.restore_image(torch.rand(3, 40, 40), force_class=model.num_classes - 1, dtype=torch.uint8)


def test_regions_pay_fsrcnn_bicubic_skip_once_on_the_whole_image():
    torch.manual_seed(0)
    model = ClassSR(base=dict(type="FSRCNN", d=56, upscale=4, residual=True)).eval()
    with torch.no_grad():
        for b in model.branches:  # trained-like: the learned part is not ~0
            torch.nn.init.normal_(b.last.weight, std=0.05)
    img = torch.rand(3, 150, 100)  # more rows than one band of the skip
    assert model.skip_context == 4  # as FSRCNN declares it
    band_wise = torch.empty(3, 600, 400)
    for job in model._skip_jobs(img, band_wise):  # every row
        job()
    whole_skip = F.interpolate(img[None], scale_factor=4, mode="bicubic", align_corners=False)[0]
    assert torch.allclose(band_wise, whole_skip, atol=1e-6)
    widths = []
    for b in model.branches:  # record what the skip runs on
        b.skip = lambda x, f=b.skip: widths.append(x.shape[-1]) or f(x)
    # a margin whose kept half covers FSRCNN's receptive field (8 LR px): exact everywhere
    widest = model.restore_image(img, execution="regions", force_class=2, margin=16, max_cells=2)
    assert widths and set(widths) == {100}  # bands of the whole image: no rectangle, no probe
    with torch.no_grad():
        whole = model.branches[2](img[None])[0]
    assert torch.allclose(widest.image, whole, atol=1e-5)  # skip and residual as on the whole image
    plain = ClassSR(base=dict(type="FSRCNN", d=56, upscale=4)).eval()
    assert plain.skip_context is None  # no skip: nothing to hoist


@register_arch
class NearestPlus(nn.Module):
    """A toy arch with the fixed-skip protocol: nearest x2 plus a learned residual of `nf` features."""

    def __init__(self, nf=8, context=1):
        super().__init__()
        self.skip_context = context  # nearest reads no neighbour; None: not declared
        self.body = nn.Sequential(nn.Conv2d(3, nf, 3, padding=1), nn.ReLU(), nn.Conv2d(nf, 12, 3, padding=1),
                                  nn.PixelShuffle(2))

    def forward_residual(self, x):
        return self.body(x)

    def skip(self, x):
        return F.interpolate(x, scale_factor=2, mode="nearest")

    def forward(self, x):
        return self.forward_residual(x) + self.skip(x)


def test_any_arch_declares_a_fixed_skip():
    torch.manual_seed(0)
    img = torch.rand(3, 90, 70)
    outs = {}
    for context in (1, None):
        torch.manual_seed(1)  # the same weights, declared or not
        model = ClassSR(base=dict(type="NearestPlus", context=context), widths=[4, 6, 8],
                        classifier={"type": "EdgeScore"}).eval()
        assert model.skip_context == context
        calls = []
        for b in model.branches:  # record the inputs the skip runs on
            b.skip = lambda x, f=b.skip: calls.append(tuple(x.shape[-2:])) or f(x)
        outs[context] = model.restore_image(img, force_class=torch.arange(9) % 3, margin=4, max_cells=2).image
        # declared: bands of the whole image (64 rows and their context); else once per rectangle
        assert (set(calls) == {(65, 70), (27, 70)}) == (context is not None)
    assert torch.allclose(outs[1], outs[None], atol=1e-6)  # hoisting changes where, not what


def test_workers_give_the_one_thread_result_in_any_grad_mode():
    """Inter-op workers split the calls, not the arithmetic of one call's pixels: the output
    matches one call at a time, and the caller's inference mode reaches the workers (its
    tensors are inference tensors there)."""
    torch.manual_seed(0)
    model = ClassSR(base=dict(type="FSRCNN", d=56, upscale=4, residual=True)).eval()
    img = torch.rand(3, 150, 170)
    assign = torch.arange(len(CellGrid(150, 170, 32))) % 3
    one = model.restore_image(img, force_class=assign, workers=1)
    for workers in (2, 3):
        with torch.inference_mode():
            many = model.restore_image(img, force_class=assign, workers=workers)
        assert torch.allclose(many.image, one.image, atol=1e-5)
        assert many.flops_percent == one.flops_percent
    tiles = model.restore_image(img, "tiles", workers=2)
    assert torch.allclose(tiles.image, model.restore_image(img, "tiles", workers=1).image, atol=1e-5)


def test_workers_restore_torch_threads_and_raise_job_errors():
    from classsr_plugin.execution import Workers
    threads = torch.get_num_threads()
    with pytest.raises(ZeroDivisionError):
        with Workers(2) as w:
            assert torch.get_num_threads() == 1
            w.map(lambda x: 1 / x, [1, 0, 2])
    assert torch.get_num_threads() == threads


def test_execution_settings_are_checked():
    with pytest.raises(ValueError, match="margin=40: at most the cell size"):
        Execution(margin=40)
    with pytest.raises(ValueError, match="stride"):
        Execution(mode="tiles", tile=16, stride=28)
    Execution(mode="regions", tile=16)  # the default stride is not a regions setting
    with pytest.raises(TypeError, match="unknown execution settings: strides"):
        Execution.of("tiles", strides=3)
    assert Execution.of(Execution(tile=16), margin=4) == Execution(tile=16, margin=4)


def _window_cost(rects, grid, cost_px, margin=2, overhead=2048):
    """What regions.cover minimises, computed here from its definition."""
    out = 0.0
    for k, r0, c0, rows, cols in rects:
        y0, y1, x0, x1 = grid.box(r0, c0, rows, cols)
        px = (min(y1 + margin, grid.height) - max(y0 - margin, 0)) * (min(x1 + margin, grid.width) - max(x0 - margin, 0))
        out += cost_px[k] * px + (overhead if cost_px[k] > 0 else 0)
    return out


def _cheapest_by_search(cm, grid, cost_px, max_cells):
    """Every partition of a small class map into rectangles (each at its widest class), searched
    exhaustively: the cheapest cost."""
    ny, nx = cm.shape
    free = [[True] * nx for _ in range(ny)]

    def search():
        cell = next(((r, c) for r in range(ny) for c in range(nx) if free[r][c]), None)
        if cell is None:
            return 0.0
        r, c = cell
        best = float("inf")
        for h in range(1, min(max_cells, ny - r) + 1):
            for w in range(1, min(max_cells, nx - c) + 1):
                if not all(free[r + i][c + j] for i in range(h) for j in range(w)):
                    continue
                k = int(cm[r:r + h, c:c + w].max())
                for i in range(h):
                    for j in range(w):
                        free[r + i][c + j] = False
                best = min(best, _window_cost([(k, r, c, h, w)], grid, cost_px) + search())
                for i in range(h):
                    for j in range(w):
                        free[r + i][c + j] = True
        return best
    return search()


def test_cover_moves_cells_only_to_wider_classes_and_is_cheapest():
    from classsr_plugin.regions import cover, paint
    cost_px = [0.45, 0.75, 1.0]  # FSRCNN d=16 / 36 / 56 per pixel, relative: overhead 2048 px of d=56
    torch.manual_seed(3)
    grid = CellGrid(200, 300, 32)
    cm = torch.randint(0, 3, grid.shape)
    rects = cover(cm, grid, 2, 8, cost_px, 2048)
    after = paint(rects, grid.shape)
    assert (after >= cm).all()
    seen = torch.zeros(grid.shape, dtype=torch.long)
    for k, r0, c0, rows, cols in rects:
        assert 1 <= rows <= 8 and 1 <= cols <= 8 and k == cm[r0:r0 + rows, c0:c0 + cols].max()
        seen[r0:r0 + rows, c0:c0 + cols] += 1
    assert (seen == 1).all()
    assert _window_cost(rects, grid, cost_px) < _window_cost(merge_cells(cm, 8), grid, cost_px)
    # one block of 2 x 3 or 3 x 2 cells (every partition of a 2-cell strip is guillotine): the
    # cheapest there is, by search; the last row and column of cells are cut by the image border
    for seed in range(8):
        torch.manual_seed(seed)
        small = CellGrid(50, 90, 32) if seed % 2 else CellGrid(90, 50, 32)
        cm = torch.randint(0, 3, small.shape)
        got = _window_cost(cover(cm, small, 2, 3, cost_px, 2048), small, cost_px)
        assert abs(got - _cheapest_by_search(cm, small, cost_px, 3)) < 1e-6, cm
    # a lone middle-class cell inside the widest class joins it; a 4x4 block of the narrowest
    # stays (run at the widest it would cost more than its own call)
    cm = torch.full((12, 12), 2)
    cm[1, 9] = 1
    cm[2:6, 1:5] = 0
    out = paint(cover(cm, CellGrid(384, 384, 32), 2, 8, cost_px, 2048), (12, 12))
    assert out[1, 9] == 2 and (out[2:6, 1:5] == 0).all()
    # one class everywhere: the largest blocks (8 x 8 cells, then what is left)
    assert len(cover(torch.ones(10, 17, dtype=torch.long), CellGrid(320, 544, 32), 2, 8, cost_px, 2048)) == 2 * 3
    # a class that costs nothing (a zero class the skip covers) runs no window: no overhead to save
    cm = torch.zeros(4, 4, dtype=torch.long)
    cm[0, 0] = 2
    rects = cover(cm, CellGrid(128, 128, 32), 2, 8, [0.0, 0.75, 1.0], 2048)
    assert paint(rects, (4, 4)).sum() == 2  # only the widest cell runs at a cost


def test_restore_image_reports_the_classes_that_ran():
    torch.manual_seed(0)
    model = ClassSR(base=dict(type="FSRCNN", d=56, upscale=4)).eval()
    img = torch.rand(3, 160, 160)
    assign = torch.full((5, 5), 2)
    assign[2, 2] = 1  # a lone d=36 cell inside d=56
    res = model.restore_image(img, force_class=assign.view(-1))
    assert res.class_map[2, 2] == 2 and res.counts == [0, 0, 25]  # it ran inside its neighbour
    plain = model.restore_image(img, force_class=assign.view(-1), coarsen=False)
    assert plain.class_map[2, 2] == 1 and plain.counts == [0, 1, 24]
    assert res.flops_percent < plain.flops_percent  # one window fewer: less margin to run


def test_a_model_carries_its_own_margin(tmp_path):
    """ClassSR(margin=3): regions use 3 px of context unless the call says otherwise; the margin
    travels in the saved config, and eval's regions row names it. Without one: execution.MARGIN."""
    from classsr_plugin.checkpoint import load
    from classsr_plugin.execution import MARGIN
    torch.manual_seed(0)
    base = {"type": "FSRCNN", "d": 16, "s": 8, "m": 2}
    model = ClassSR(base=base, margin=3).eval()
    assert model.config["margin"] == 3 and "margin" not in ClassSR(base=base).config
    assert ClassSR(base=base).margin == MARGIN == 2 and Execution().margin is None
    img = torch.rand(3, 96, 128)
    cls = torch.randint(0, 3, (12,))
    run = lambda m, **kw: m.restore_image(img, force_class=cls, max_cells=1, **kw).image  # noqa: E731
    own, three, zero = run(model), run(model, margin=3), run(model, margin=0)
    diff = lambda a, b: float((a - b).abs().max())  # noqa: E731  (workers may sum in another order)
    assert diff(own, three) < 1e-6 < 1e-4 < diff(own, zero)
    assert diff(own, run(model, margin=MARGIN)) > 1e-6  # not the global default
    model.save(str(tmp_path / "m.pth"))
    again = load(str(tmp_path / "m.pth"))
    assert again.margin == 3 and diff(run(again), own) < 1e-6
    with pytest.raises(ValueError, match="margin=-1"):
        ClassSR(base=base, margin=-1)
