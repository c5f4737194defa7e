"""Supervised routing: oracle classes from the trained branches (`classsr label`), a classifier
that learns them by cross-entropy while the branches stay as they are, and the options' checks."""
import os

import cv2
import numpy as np
import pytest
import torch
from basicsr.losses import build_loss

from classsr_plugin import ClassSR
from classsr_plugin.data import label
from classsr_plugin.data.prepare import read_meta
from classsr_plugin.phases import PhaseSettings
from test_training import synthetic  # noqa: F401  (registers BlendUp)


def test_oracle_class_is_the_cheapest_within_tolerance():
    errors = np.array([[1.0, 1.0, 1.0],     # all equal: the narrowest
                       [5.0, 2.5, 2.0],     # middle within 0.5, narrow not
                       [9.0, 8.0, 2.0],     # only the widest
                       [1.9, 3.0, 2.0]])    # narrow better than the widest
    assert oracle(errors, 0.5) == [0, 1, 2, 0]
    assert oracle(errors, 0.0) == [0, 2, 2, 0]
    rows = label.oracle_table(errors, [25.0, 50.0, 100.0], [0.0, 0.5, 100.0])
    assert [r[2] for r in rows] == [pytest.approx(100 * (0.25 + 1 + 1 + 0.25) / 4),
                                    pytest.approx(100 * (0.25 + 0.5 + 1 + 0.25) / 4), 25.0]
    assert rows[0][3] == pytest.approx(10 * np.log10(errors[:, 2].mean() / np.array([1, 2, 2, 1.9]).mean()))


def oracle(errors, tol):
    return label.oracle_classes(errors, tol).tolist()


def two_branch_model(sharp_narrow):
    model = ClassSR(base={"type": "BlendUp", "num_feat": 8}, num_classes=2, widths=[4, 8], probe_tile=16)
    model.branches[0].sharp.data.fill_(sharp_narrow)
    model.branches[1].sharp.data.fill_(1.0)
    return model.eval()


@pytest.fixture(scope="module")
def subimages(tmp_path_factory):
    """A prepared folder of synthetic x2 pairs: half flat, half textured."""
    root = tmp_path_factory.mktemp("sub")
    lq, gt, is_tex = synthetic(40, torch.Generator().manual_seed(0))
    for sub in ("lq", "gt"):
        os.makedirs(root / sub)
    lines = ["# name psnr class\n"]
    for i in range(len(lq)):
        for sub, t in (("lq", lq[i]), ("gt", gt[i])):
            cv2.imwrite(str(root / sub / f"t{i:02d}.png"), (t.permute(1, 2, 0).numpy()[:, :, ::-1] * 255).round().astype(np.uint8))
        lines.append(f"t{i:02d} 30.0 {i % 2}\n")
    (root / "meta_info.txt").write_text("".join(lines))
    return root, is_tex


def test_label_by_oracle_sends_flat_tiles_to_the_narrow_branch(subimages):
    root, is_tex = subimages
    model = two_branch_model(0.0)  # narrow = bilinear: exact on flat tiles only
    errors, _ = label.label_by_oracle(str(root), list(model.branches), 1e-6, str(root / "oracle.txt"), progress=False)
    items = read_meta(str(root / "oracle.txt"))
    classes = torch.tensor([c for _, _, c in items])
    assert torch.equal(classes, is_tex.long())
    assert np.allclose(errors[~is_tex.numpy(), 0], 0, atol=1e-6) and (errors[is_tex.numpy(), 0] > 1e-3).all()
    # the same branches everywhere: every tile is within tolerance of the widest, so the cheapest
    label.label_by_oracle(str(root), list(two_branch_model(1.0).branches), 0.0, str(root / "same.txt"), progress=False)
    assert {c for _, _, c in read_meta(str(root / "same.txt"))} == {0}


def test_oracle_takes_the_widest_errors_from_the_base_networks_difficulty_labels(subimages):
    """--widest-psnr: the widest branch is the base network, whose PSNR per sub-image a difficulty
    labelling already measured: the oracle runs only the narrower branches and gets the same
    errors (to the 4 decimals of dB the file holds); a file of another network's PSNR, or of other
    sub-images, is refused by name."""
    root, _ = subimages
    model = two_branch_model(0.0)
    full, _ = label.label_by_oracle(str(root), list(model.branches), 1e-6, str(root / "o_full.txt"), progress=False)
    label.label_by_difficulty(str(root), model.branches[1], 2, str(root / "base.txt"), progress=False)
    calls = []
    counted = lambda lq: calls.append(len(lq)) or model.branches[1](lq)  # noqa: E731
    reused, _ = label.label_by_oracle(str(root), [model.branches[0], counted], 1e-6, str(root / "o_reused.txt"),
                                      progress=False, widest_psnr=str(root / "base.txt"), batch=16)
    assert np.allclose(reused, full, rtol=1e-4, atol=1e-9)  # the file holds at most 100 dB: MSE 1e-10
    assert sum(calls) == 16  # the widest ran on the first batch only, to check the file
    assert [c for *_, c in read_meta(str(root / "o_reused.txt"))] == [c for *_, c in read_meta(str(root / "o_full.txt"))]
    label.label_by_difficulty(str(root), model.branches[0], 2, str(root / "other.txt"), progress=False)
    with pytest.raises(ValueError, match="is not the widest branch's"):
        label.label_by_oracle(str(root), list(model.branches), 1e-6, str(root / "x.txt"), progress=False,
                              widest_psnr=str(root / "other.txt"))
    lines = (root / "base.txt").read_text().splitlines(keepends=True)
    (root / "short.txt").write_text("".join(lines[:-1]))
    with pytest.raises(ValueError, match="same sub-images"):
        label.label_by_oracle(str(root), list(model.branches), 1e-6, str(root / "x.txt"), progress=False,
                              widest_psnr=str(root / "short.txt"))


def test_label_by_difficulty_gives_equal_classes(subimages):
    root, is_tex = subimages
    net = two_branch_model(0.0).branches[0]
    counts = label.label_by_difficulty(str(root), net, 2, str(root / "diff.txt"), progress=False)
    assert counts == [20, 20]
    classes = torch.tensor([c for _, _, c in read_meta(str(root / "diff.txt"))])
    assert torch.equal(classes, is_tex.long())  # the hard (textured) half is class 1


def test_supervised_router_learns_oracle_classes_and_leaves_branches():
    model = two_branch_model(0.0)
    settings = PhaseSettings(phase="classifier", router="supervised")
    settings.freeze(model, log=lambda s: None)
    before = {k: v.clone() for k, v in model.branches.state_dict().items()}
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    pixel = build_loss({"type": "L1Loss"})
    model.train()
    calls = []
    model.branches[0].register_forward_hook(lambda *a: calls.append(1))
    for _ in range(120):
        lq, gt, is_tex = synthetic(32, gen)
        terms, idx, out = settings.forward_losses(model, lq, gt, is_tex.long(), pixel)
        assert set(terms) == {"l_route"} and out is None
        opt.zero_grad()
        terms["l_route"].backward()
        opt.step()
    assert not calls  # the branches never ran
    assert all(torch.equal(before[k], v) for k, v in model.branches.state_dict().items())
    lq, _, is_tex = synthetic(200, torch.Generator().manual_seed(1))
    with torch.no_grad():
        idx = model.eval()(lq, run_branches=False).idx
    assert (idx == is_tex.long()).float().mean() > 0.9


def test_settings_are_checked_in_one_place(tmp_path):
    with pytest.raises(KeyError, match=r"classsr\.rooter: unknown option; known: .*router"):
        PhaseSettings.from_options({"phase": "classifier", "rooter": "supervised"})
    with pytest.raises(ValueError, match=r"model\.router: 'supervised' trains the classifier alone"):
        PhaseSettings.from_options({"phase": "joint", "router": "supervised"}, "model.")
    with pytest.raises(ValueError, match=r"classsr\.init_narrow: 'slise' is not one of"):
        PhaseSettings(phase="branches", init_narrow="slise")
    with pytest.raises(ValueError, match=r"classsr\.distill: .* is for phase: branches"):
        PhaseSettings(phase="joint", distill=1.0)
    with pytest.raises(FileNotFoundError, match=r"classsr\.init_base: .*nope.pth does not exist"):
        PhaseSettings(phase="branches", init_base=str(tmp_path / "nope.pth"))
    s = PhaseSettings(phase="branches")
    with pytest.raises(ValueError, match=r"classsr\.init_base: the widest branch is frozen .* path\.pretrain_network_g"):
        s.check_widest_source(False, "path.pretrain_network_g")
    s.check_widest_source(True, "path.pretrain_network_g")  # a pretrained ClassSR brings its widest branch
    PhaseSettings(phase="branches", freeze_widest=False).check_widest_source(False, "x")
    assert PhaseSettings(phase="branches").frozen_branches(3) == (2,)
    assert PhaseSettings(phase="joint", freeze_widest=False).frozen_branches(3) == ()
    assert PhaseSettings(phase="classifier").frozen_branches(3) == (0, 1, 2)


def test_distillation_targets_the_widest_branch():
    model = ClassSR(base={"type": "FSRCNN", "d": 56})
    settings = PhaseSettings(phase="branches", distill=0.5, freeze_widest=True)
    settings.freeze(model, log=lambda s: None)
    lq, gt = torch.rand(4, 3, 32, 32), torch.rand(4, 3, 128, 128)
    label = torch.tensor([0, 0, 1, 1])
    pixel = build_loss({"type": "L1Loss"})
    terms, idx, out = settings.forward_losses(model.train(), lq, gt, label, pixel)
    with torch.no_grad():
        teacher = model.branches[2](lq)
    assert torch.allclose(terms["l_distill"], 0.5 * (out - teacher).abs().mean())
    sum(terms.values()).backward()
    assert model.branches[0].last.weight.grad.abs().sum() > 0 and model.branches[1].last.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.branches[2].parameters())  # frozen: the base network


def test_edge_score_router_routes_by_thresholds_and_fits_them():
    from classsr_plugin.classifier import EdgeScore, fit_edge
    r = EdgeScore(3, thresholds=[0.05, 0.2])
    flat = torch.full((2, 3, 16, 16), 0.5)
    mid = torch.rand(2, 3, 16, 16) * 0.2 + 0.4
    busy = (torch.rand(2, 3, 16, 16) > 0.5).float()
    x = torch.cat([flat, mid, busy])
    s = EdgeScore.score(x)
    assert torch.equal(r(x).argmax(1), (s[:, None] > r.thresholds[None]).sum(1))
    assert r(x).argmax(1).tolist() == [0, 0, 1, 1, 2, 2]
    # logits move monotonically with the score: the budget knob's offsets shift tiles one way
    lo, hi = r(flat[:1]), r(busy[:1])
    assert (hi[0, 1:] - hi[0, :-1] > lo[0, 1:] - lo[0, :-1]).all()
    # fitted on errors where the narrow branches fail above known scores: thresholds between
    scores = torch.linspace(0, 1, 300, dtype=torch.float64)
    errors = torch.stack([torch.where(scores > 0.3, 1.0, 0.0), torch.where(scores > 0.7, 1.0, 0.0),
                          torch.zeros(300, dtype=torch.float64)], 1)
    t0, t1 = fit_edge(scores, errors, [0.3, 0.6, 1.0], lam=1e-3)
    assert 0.25 <= t0 <= 0.31 and 0.65 <= t1 <= 0.71
    with pytest.raises(ValueError, match="classifier.thresholds"):
        EdgeScore(3, thresholds=[0.2, 0.1])


def test_edge_router_from_label_cli(subimages, tmp_path, capsys):
    from classsr_plugin.checkpoint import load
    from classsr_plugin.cli import main
    root, is_tex = subimages
    model = two_branch_model(0.0)
    model.save(str(tmp_path / "two.pth"))
    assert main(["label", "--data", str(root), "--by", "oracle", "-opt", str(tmp_path / "two.pth"), "--tol", "1e-6",
                 "-o", str(tmp_path / "m.txt"), "--edge-router", str(tmp_path / "edge.pth"), "--lam", "1e-3"]) == 0
    routed = load(str(tmp_path / "edge.pth"))
    assert routed.config["classifier"]["type"] == "EdgeScore"
    assert routed.config["classifier"]["score"] == "laplacian"  # the default score, kept in the checkpoint
    assert torch.equal(routed.branches[0].sharp, model.branches[0].sharp)  # the same branches
    lq, _, tex = synthetic(100, torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(routed(lq, run_branches=False).idx, tex.long())  # flat -> narrow, texture -> widest
    assert main(["label", "--data", str(root), "--by", "oracle", "-opt", str(tmp_path / "two.pth"), "--tol", "1e-6",
                 "-o", str(tmp_path / "m.txt"), "--edge-router", str(tmp_path / "grad.pth"), "--lam", "1e-3",
                 "--score", "gradient"]) == 0
    assert "score" not in load(str(tmp_path / "grad.pth")).config["classifier"]  # as written before the option
    assert "path" not in load(str(tmp_path / "grad.pth")).config["classifier"]  # one lam given: nothing to follow
    assert main(["label", "--data", str(root), "--by", "oracle", "-opt", str(tmp_path / "two.pth"), "--tol", "1e-6",
                 "-o", str(tmp_path / "m.txt"), "--edge-router", str(tmp_path / "grid.pth")]) == 0
    cfg = load(str(tmp_path / "grid.pth")).config["classifier"]
    assert len(cfg["path"]) == 9 and cfg["thresholds"] in cfg["path"]  # the grid's lams, the chosen one among them
    # several scores from one pass: one router each, the same as fitted alone
    assert main(["label", "--data", str(root), "--by", "oracle", "-opt", str(tmp_path / "two.pth"), "--tol", "1e-6",
                 "-o", str(tmp_path / "m.txt"), "--edge-router", str(tmp_path / "each_{score}.pth"), "--lam", "1e-3",
                 "--score", "gradient,laplacian,coarse"]) == 0
    assert load(str(tmp_path / "each_gradient.pth")).config["classifier"] == load(str(tmp_path / "grad.pth")).config["classifier"]
    assert load(str(tmp_path / "each_laplacian.pth")).config["classifier"] == routed.config["classifier"]
    assert load(str(tmp_path / "each_coarse.pth")).config["classifier"]["score"] == "coarse"
    for score, router, err in (("sobel", "x.pth", "--score: sobel not one of"),
                               ("gradient,coarse", str(tmp_path / "x.pth"), "needs '{score}' in its name")):
        assert main(["label", "--data", str(root), "--by", "oracle", "-opt", str(tmp_path / "two.pth"),
                     "--edge-router", router, "--score", score]) != 0
        assert err in capsys.readouterr().err


def test_budget_follows_the_edge_routers_fitted_thresholds():
    """With a path (the thresholds fitted at each lam), the budget knob moves along it: every
    tile widest at one end, the router's own routing at 0, each fitted row at its knot, every
    tile narrowest at the other end, and the cost never rises on the way."""
    import numpy as np
    from classsr_plugin.classifier import EdgeScore, edge_classes, gradient_score
    from classsr_plugin.cost import route_under_budget
    path = [[0.01, 0.05], [0.02, 0.06], [0.04, 0.08], [0.06, 0.12]]
    router = EdgeScore(3, thresholds=[0.02, 0.06], path=path)
    x = torch.rand(200, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * torch.linspace(0, 0.4, 200)[:, None, None, None]
    logits = router(x)
    pick, lo, hi = router.budget_path(logits)
    rel = torch.tensor([0.3, 0.6, 1.0])
    assert (pick(lo) == 2).all() and (pick(hi) == 0).all() and torch.equal(pick(0), logits.argmax(1))
    score = gradient_score(x)
    assert all(torch.equal(pick(j - 1), edge_classes(score, row)) for j, row in enumerate(path))
    costs = [float(rel[pick(v)].mean()) for v in np.linspace(lo, hi, 81)]
    assert all(a >= b - 1e-9 for a, b in zip(costs, costs[1:]))
    own = float(rel[logits.argmax(1)].mean())
    assert torch.equal(route_under_budget(logits, [3, 6, 10], own + 0.05, path=(pick, lo, hi)), logits.argmax(1))
    for budget in (0.35, 0.5, 0.8):
        k = route_under_budget(logits, [3, 6, 10], budget, mode="target", path=(pick, lo, hi))
        assert budget - 0.05 <= float(rel[k].mean()) <= budget + 1e-6
    # a ClassSR with the path routes its budgets along it
    model = ClassSR(base=dict(type="FSRCNN", d=24, upscale=2), classifier={"type": "EdgeScore",
                                                                        "thresholds": [0.02, 0.06], "path": path}).eval()
    assert EdgeScore(3, thresholds=[0.02, 0.06]).budget_path(logits) is None  # no path: offsets on the logits
    asked = []
    follow = model.classifier.budget_path
    model.classifier.budget_path = lambda lg: asked.append(len(lg)) or follow(lg)
    img = torch.rand(3, 64, 96, generator=torch.Generator().manual_seed(1)) * 0.3
    for mode in ("tiles", "regions"):
        floor = model.restore_image(img, mode, force_class=0).flops_percent  # every tile narrowest
        budget = (floor / 100 + 1) / 2
        res = model.restore_image(img, mode, budget=budget, budget_mode="target")
        assert floor <= res.flops_percent <= 100 * budget + 1e-6
    assert len(asked) == 2  # restore_image routes its budget along the path, in tiles and in regions
    with pytest.raises(ValueError, match="one of them the thresholds"):
        EdgeScore(3, thresholds=[0.03, 0.06], path=path)
    with pytest.raises(ValueError, match="a threshold falls along the path"):
        EdgeScore(3, thresholds=[0.02, 0.06], path=[[0.02, 0.06], [0.01, 0.08]])


def test_laplacian_score_ignores_ramps_and_routes_like_its_thresholds():
    from classsr_plugin.classifier import EdgeScore, edge_classes, gradient_score, laplacian_score
    ramp = torch.linspace(0, 1, 16).expand(1, 3, 16, 16).clone()
    busy = (torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    assert laplacian_score(ramp) < 1e-6 < 0.05 < gradient_score(ramp)  # a slope: no curvature
    assert laplacian_score(busy) > 1.0
    x = torch.rand(64, 3, 16, 16) * torch.linspace(0, 0.3, 64)[:, None, None, None]
    router = EdgeScore(4, thresholds=[0.05, 0.1, 0.2], score="laplacian")
    k = edge_classes(laplacian_score(x), router.thresholds)
    assert torch.equal(router(x).argmax(1), k) and k.unique().tolist() == [0, 1, 2, 3]
    assert not torch.equal(k, edge_classes(gradient_score(x), router.thresholds))  # the score matters
    with pytest.raises(KeyError, match="classifier.score: 'sobel' is not one of gradient, laplacian"):
        EdgeScore(3, score="sobel")


def test_coarse_score_sees_an_edge_through_noise():
    """Sigma-25 noise swamps the pixel-level scores (a noisy flat patch scores as high as a noisy
    edge); block means keep the edge above every flat patch."""
    from classsr_plugin.classifier import EDGE_SCORES, EdgeScore
    g = torch.Generator().manual_seed(0)
    flat = torch.full((32, 3, 32, 32), 0.5)
    edge = flat.clone()
    edge[..., 16:] += 0.2
    noisy_flat, noisy_edge = (x + torch.randn(x.shape, generator=g) * 25 / 255 for x in (flat, edge))
    separates = {k: bool(f(noisy_edge).min() > f(noisy_flat).max()) for k, f in EDGE_SCORES.items()}
    assert separates == {"gradient": False, "laplacian": False, "coarse": True}
    router = EdgeScore(2, thresholds=[0.045], score="coarse")
    assert router(noisy_flat).argmax(1).eq(0).all() and router(noisy_edge).argmax(1).eq(1).all()


def test_reset_classifier_starts_the_classifier_afresh():
    model = ClassSR(base=dict(type="FSRCNN", d=56), classifier={"type": "ClassModule", "nf": 8, "init_scale": 1.0})
    with torch.no_grad():
        for p in model.classifier.parameters():
            p.fill_(0.0)
    PhaseSettings(phase="classifier", reset_classifier=True).after_load(model, log=lambda s: None)
    assert all(p.abs().sum() > 0 for n, p in model.classifier.named_parameters() if n.endswith("weight"))
    with pytest.raises(ValueError, match="reset_classifier: for phase: classifier"):
        PhaseSettings(phase="joint", reset_classifier=True)


def test_edge_classes_is_the_edge_routers_argmax():
    from classsr_plugin.classifier import EdgeScore, edge_classes
    router = EdgeScore(num_classes=4, thresholds=[0.02, 0.05, 0.1])
    x = torch.rand(64, 3, 16, 16) * torch.linspace(0, 0.3, 64)[:, None, None, None]  # scores 0 .. 0.2
    k = edge_classes(EdgeScore.score(x), router.thresholds)
    assert torch.equal(router(x).argmax(1), k) and k.unique().tolist() == [0, 1, 2, 3]


def test_edge_router_bounds_the_loss_per_photo():
    """Held-out tables average PSNR per image, so --max-loss bounds the mean of each photo's
    PSNR change: a flat photo whose narrow-branch error is tiny in absolute terms (pooled: -0.004
    dB) but doubles its MSE (-3 dB) keeps its tiles on the widest branch (the grid's lowest
    threshold still sends the flattest one narrow: -0.011 dB)."""
    import numpy as np
    from classsr_plugin.data import label
    n = 200
    scores = torch.linspace(0, 1, 2 * n, dtype=torch.float64)
    widest = np.r_[np.full(n, 1e-6), np.full(n, 1e-3)]        # photo 0 flat (low scores), photo 1 busy
    narrow = widest + np.r_[np.full(n, 1e-6), np.full(n, 2e-4)]
    errors = np.stack([narrow, widest], 1)
    groups = np.r_[np.zeros(n, int), np.ones(n, int)]
    everything_narrow = np.zeros(2 * n, int)
    assert label.photo_db(errors, everything_narrow, groups) == pytest.approx(
        np.mean([10 * np.log10(1 / 2), 10 * np.log10(1e-3 / 1.2e-3)]))
    model = two_branch_model(0.0)
    _, _, pooled = label.edge_router(model, errors, scores, max_loss=0.02)
    _, _, per_photo = label.edge_router(model, errors, scores, max_loss=0.02, groups=groups)
    assert pooled[4] >= -0.02 and pooled[5] is None
    assert pooled[2][0] > 0.4  # pooled: the flat photo's tiles go narrow, "losing" almost nothing
    assert per_photo[5] >= -0.02 and per_photo[2][0] < 0.01 and per_photo[0] < pooled[0]
    from classsr_plugin.classifier import edge_classes
    assert label.photo_db(errors, edge_classes(scores, pooled[1]).numpy(), groups) < -1  # what per photo avoids


def test_photo_weights_make_the_fit_minimise_the_per_photo_loss():
    """fit="photo": each sub-image's added MSE weighs 1 / (its photo's count x widest MSE), so the
    mean the thresholds minimise is (up to one constant) the mean over photos of each photo's
    relative MSE change: the first-order per-photo PSNR loss that --max-loss bounds."""
    import numpy as np
    from classsr_plugin.data import label
    rng = np.random.default_rng(0)
    groups = np.repeat([0, 1, 2], [50, 120, 30])
    widest = rng.uniform(0.5, 1.5, len(groups)) * np.array([1e-6, 1e-3, 3e-4])[groups]
    errors = np.stack([widest * rng.uniform(1, 1.01, len(groups)), widest], 1)
    w = label.photo_weights(errors, groups)
    assert label.photo_weights(np.full((60, 2), 1e-3), np.repeat([0, 1, 2], 20)) == pytest.approx(1)
    k = rng.integers(0, 2, len(groups))
    added = errors[np.arange(len(k)), k] - widest
    relative = [added[groups == p].sum() / widest[groups == p].sum() for p in range(3)]
    ratio = np.mean(w * added) / np.mean(relative)
    assert ratio == pytest.approx(widest.mean())  # the pooled MSE: the units of the pooled objective
    k2 = 1 - k  # another routing: the same constant
    added2 = errors[np.arange(len(k)), k2] - widest
    assert np.mean(w * added2) / np.mean([added2[groups == p].sum() / widest[groups == p].sum() for p in range(3)]) \
        == pytest.approx(ratio)
    scores = torch.linspace(0, 1, len(groups), dtype=torch.float64)
    model = two_branch_model(0.0)
    _, rows, chosen = label.edge_router(model, errors, scores, max_loss=0.02, groups=groups, fit="photo")
    assert chosen[5] >= -0.02 and chosen in rows
    with pytest.raises(ValueError, match="groups"):
        label.edge_router(model, errors, scores, fit="photo")
    with pytest.raises(ValueError, match="'pooled' or 'photo'"):
        label.edge_router(model, errors, scores, groups=groups, fit="photos")
