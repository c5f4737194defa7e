"""New class labels for a prepared sub-image set (`classsr prepare` output), written as another
meta file in the same format (`name psnr class`), so any dataset option `meta_info` can use it.

- by difficulty: equal-count classes by the PSNR of a trained reference network (the paper ranks
  by a trained SR network; `prepare` without --ref only had bicubic PSNR);
- by oracle: for supervised routing, each sub-image's target is the cheapest branch whose error,
  measured with the trained (frozen) branches, is within `tol` of the widest branch's.
  `tol` is an absolute MSE on [0, 1] pixels: what a branch may add to a tile's squared error per
  pixel. Absolute, not relative, because an image's PSNR is its mean squared error: a smooth tile
  may take a large relative error, a textured one not.
"""
import os
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
from tqdm import tqdm

from ..atomic import write_text
from .prepare import META, assign_classes, psnr, read_meta


def _read(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{path}: not a readable image")
    return img[:, :, ::-1]


def _batches(root: str, items, batch: int, progress: bool):
    """(lq [n, 3, h, w], gt [n, 3, H, W]) float batches of the listed sub-images, in order."""
    for i in tqdm(range(0, len(items), batch), desc="label", unit="batch", disable=None if progress else True):
        names = [it[0] for it in items[i:i + batch]]
        lq = np.stack([_read(os.path.join(root, "lq", n + ".png")) for n in names])
        gt = np.stack([_read(os.path.join(root, "gt", n + ".png")) for n in names])
        to = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float() / 255  # noqa: E731
        yield to(lq), to(gt)


@torch.no_grad()
def sub_image_errors(root: str, nets: Sequence[Callable], batch: int = 128, progress: bool = True,
                     meta: str = META, feature: Callable = None, items=None):
    """MSE (on [0, 1], outputs clipped) of every network on every listed sub-image pair (the meta
    file's, or `items`). Returns (the items, errors [N, len(nets)], feature(lq) per sub-image [N]
    or None without a feature)."""
    items = read_meta(os.path.join(root, meta)) if items is None else items
    errors, feats = [], []
    for lq, gt in _batches(root, items, batch, progress):
        errors.append(torch.stack([(net(lq).clamp(0, 1) - gt).pow(2).mean((1, 2, 3)) for net in nets], 1))
        if feature is not None:
            feats.append(feature(lq))
    return items, torch.cat(errors).numpy().astype(np.float64), torch.cat(feats).double() if feats else None


def psnr_of(mse) -> np.ndarray:
    return psnr(torch.as_tensor(mse)).numpy()


def oracle_classes(errors: np.ndarray, tol: float) -> np.ndarray:
    """[N, M] errors of branches ordered narrow -> widest -> the cheapest branch within `tol` of
    the widest's error, per sub-image."""
    ok = errors - errors[:, -1:] <= tol
    ok[:, -1] = True
    return ok.argmax(1)


def oracle_table(errors: np.ndarray, branch_flops: Sequence[float], tols: Sequence[float]):
    """For each tol: (tol, share per class, branches' FLOPs % of the widest, PSNR change of the
    mean MSE against the widest everywhere) on these sub-images."""
    rel = np.asarray(branch_flops, dtype=np.float64) / branch_flops[-1]
    return [(tol, *routed_stats(errors, rel, oracle_classes(errors, tol))) for tol in tols]


def photo_groups(root: str, meta: str = META) -> np.ndarray:
    """The photo (an index) each listed sub-image was cut from, in the meta file's order."""
    from .prepare import photo_of
    _, groups = np.unique([photo_of(it[0]) for it in read_meta(os.path.join(root, meta))], return_inverse=True)
    return groups


def photo_db(errors: np.ndarray, k: np.ndarray, groups: np.ndarray) -> float:
    """The mean over photos of each photo's PSNR change (its sub-images' pooled MSE) against the
    widest everywhere: what a held-out table that averages PSNR per image sees. A flat photo's
    tiny MSE makes a small added error cost it many dB; pooling all sub-images hides that."""
    chosen = np.bincount(groups, errors[np.arange(len(k)), k])
    widest = np.bincount(groups, errors[:, -1])
    seen = np.bincount(groups) > 0  # the sums share each photo's count: their ratio is the MSEs'
    return float(np.mean(10 * np.log10(widest[seen] / chosen[seen])))


def photo_weights(errors: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """A weight per sub-image that turns the mean added MSE into the mean over photos of each
    photo's added MSE relative to its own, times the pooled MSE (the pooled objective's units, so
    one lam grid serves both; all weights 1 where photos have equal MSE and counts): the first-order
    change of the per-photo PSNR that held-out tables average."""
    count = np.bincount(groups).astype(np.float64)
    mse = np.bincount(groups, errors[:, -1]) / np.maximum(count, 1)
    photos = np.count_nonzero(count)
    return errors[:, -1].mean() * len(groups) / (photos * count[groups] * np.maximum(mse[groups], 1e-12))


def routed_stats(errors: np.ndarray, rel: np.ndarray, k: np.ndarray):
    """One routing k (class per sub-image) -> (share per class, branches' FLOPs % of the widest
    given their relative costs, PSNR change of the mean MSE against the widest everywhere)."""
    share = np.bincount(k, minlength=errors.shape[1]) / len(k)
    mse = errors[np.arange(len(k)), k].mean()
    return share.tolist(), 100 * float(rel[k].mean()), float(psnr_of(mse) - psnr_of(errors[:, -1].mean()))


def write_meta(path: str, items, psnr: np.ndarray, classes: np.ndarray, header: str) -> None:
    lines = [f"# name psnr class ({header})\n"]
    lines += [f"{it[0]} {p:.4f} {int(c)}\n" for it, p, c in zip(items, psnr, classes)]
    write_text(path, "".join(lines))


def label_by_difficulty(root: str, net: Callable, classes: int, out: str, name: str = "reference", **kw):
    """Equal-count classes by the PSNR of `net` (lowest PSNR -> class M-1). Returns the counts."""
    items, err, _ = sub_image_errors(root, [net], **kw)
    psnr = psnr_of(err[:, 0])
    labels = assign_classes(psnr, classes)
    write_meta(out, items, psnr, labels, f"{name} PSNR; class {classes - 1} = lowest PSNR")
    return np.bincount(labels, minlength=classes).tolist()


def widest_errors(path: str, items, root: str = None, widest: Callable = None, batch: int = 128,
                  rel_tol: float = 1e-3) -> np.ndarray:
    """The widest branch's MSE per listed sub-image from another meta file's psnr column (a
    difficulty labelling by the base network, which the widest branch is): the oracle then skips
    the costliest network's pass over every sub-image. The file must list the same sub-images in
    the same order; with `widest`, its errors on the first `batch` sub-images are checked against
    the file's (4 decimals of dB: relative MSE within about 1e-5)."""
    given = read_meta(path)
    if [g[0] for g in given] != [it[0] for it in items]:
        raise ValueError(f"--widest-psnr: {path} does not list the same sub-images in the same order as the "
                         f"meta file being labelled ({len(given)} against {len(items)})")
    mse = 10 ** (-np.array([g[1] for g in given], dtype=np.float64) / 10)
    if widest is not None:
        _, check, _ = sub_image_errors(root, [widest], batch=batch, progress=False, items=items[:batch])
        # relative, with 1e-9 of slack (the PSNR formula's floor is MSE 1e-10, 100 dB; a tol is ~1e-6)
        worst = float(np.max(np.abs(check[:, 0] - mse[:len(check)]) / (check[:, 0] + 1e-9 / rel_tol)))
        if worst > rel_tol:
            raise ValueError(f"--widest-psnr: {path}'s psnr is not the widest branch's (relative MSE difference "
                             f"up to {worst:.2g} on the first {len(check)} sub-images): label by difficulty with "
                             f"this model's base network first")
    return mse


def label_by_oracle(root: str, branches: Sequence[Callable], tol: float, out: str, feature: Callable = None,
                    widest_psnr: str = None, **kw):
    """Oracle classes for supervised routing; the psnr column is the widest branch's.
    Returns the errors [N, M] (for a table of other tolerances) and the feature per sub-image
    (for fitting an edge-score router; None without a feature). widest_psnr: a meta file with
    the widest branch's PSNR per sub-image (widest_errors), so only the narrower ones run."""
    if widest_psnr is None:
        items, err, feats = sub_image_errors(root, branches, feature=feature, **kw)
    else:
        items = read_meta(os.path.join(root, kw.get("meta", META)))
        widest = widest_errors(widest_psnr, items, root, branches[-1], kw.get("batch", 128))
        items, err, feats = sub_image_errors(root, branches[:-1], feature=feature, items=items, **kw)
        err = np.concatenate([err, widest[:, None]], 1)
    write_meta(out, items, psnr_of(err[:, -1]), oracle_classes(err, tol),
               f"widest branch PSNR; class = cheapest branch within MSE {tol:g} of the widest")
    return err, feats


def edge_router(model, errors: np.ndarray, scores: torch.Tensor, lam=None, max_loss: float = 0.01,
                score: str = "gradient", groups: np.ndarray = None, fit: str = "pooled"):
    """The trained branches of `model` with an edge-score router (scores: `score` of each
    sub-image, classifier.EDGE_SCORES) fitted to their errors on these sub-images -> (the new
    ClassSR, rows (lam, thresholds, shares, FLOPs %, dB pooled, dB per photo or None) per lam
    tried, the chosen row). lam None: the largest of a grid whose router loses at most max_loss dB
    here (the allowed loss is spent on training data, never on test photos): per photo where
    `groups` (photo_groups) is given, as held-out tables average PSNR per image, else pooled.
    fit "photo" (needs groups): the thresholds minimise that per-photo loss too (photo_weights),
    not only the pick among them; "pooled": every sub-image's added MSE counts alike."""
    if fit not in ("pooled", "photo"):
        raise ValueError(f"fit: {fit!r} is not 'pooled' or 'photo'")
    if fit == "photo" and groups is None:
        raise ValueError("fit 'photo' needs the photo of each sub-image (groups)")
    from ..classifier import edge_classes, fit_edge
    cost = model.tile_cost(32).branches
    rel = np.array([c / cost[-1] for c in cost])
    rows = []
    weights = torch.from_numpy(photo_weights(errors, groups)) if fit == "photo" else None
    for lam_k in ([lam] if lam is not None else np.logspace(-6, -4, 9)):
        t = fit_edge(scores, torch.from_numpy(errors), rel.tolist(), float(lam_k), weights=weights)
        k = edge_classes(scores, t).numpy()
        rows.append((float(lam_k), t, *routed_stats(errors, rel, k), None if groups is None else photo_db(errors, k, groups)))
    loss = (lambda r: r[4]) if groups is None else (lambda r: r[5])
    within = [r for r in rows if loss(r) >= -max_loss]  # none: the costliest routing the grid has
    chosen = rows[0] if lam is not None or not within else max(within, key=lambda r: r[0])
    return with_edge_router(model, chosen[1], score, None if lam is not None else threshold_path(rows, chosen)), rows, chosen


def threshold_path(rows, chosen):
    """The thresholds of every row (ascending lam: costliest first), made monotone along the
    path away from the chosen row's, which stay as they are (a budget then never moves a tile
    to a wider class as it falls)."""
    ts = [[float(v) for v in r[1]] for r in rows]
    k = rows.index(chosen)
    for i in range(k + 1, len(ts)):
        ts[i] = [max(a, b) for a, b in zip(ts[i], ts[i - 1])]
    for i in range(k - 1, -1, -1):
        ts[i] = [min(a, b) for a, b in zip(ts[i], ts[i + 1])]
    return ts


def with_edge_router(model, thresholds, score: str = "gradient", path=None):
    """The same ClassSR (config and branches) routed by an edge score with these thresholds
    (and the budget knob along `path`, the thresholds fitted at each lam, where given)."""
    from ..wrapper import ClassSR
    cfg = {"type": "EdgeScore", "thresholds": [float(v) for v in thresholds]}
    if score != "gradient":  # the default: configs written before `score` existed stay as they were
        cfg["score"] = score
    if path:
        cfg["path"] = [[float(v) for v in r] for r in path]
    routed = ClassSR(**{**model.config, "classifier": cfg})
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("classifier.")}
    routed.load_state_dict({**routed.state_dict(), **state})
    return routed
