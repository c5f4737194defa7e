"""Narrow branches of a plain convolution chain, initialised from the trained wide one by channel
pruning with least-squares reconstruction (`init_narrow: prune`).

Slicing (the leading channels) is a good start where the network has skips that carry the signal
(FSRCNN's, SRResNet's); a plain deep chain such as DnCNN-17 loses it: measured on the sigma-25
denoiser, a 36-feature slice predicts a residual of std 0.010 where DnCNN-O's is 0.092 and scores
19.7 dB on its easiest class against 39.6. Here, conv by conv, the narrow net keeps the wide
conv's most active output channels (mean squared activation after a ReLU) and its weights are
solved by least squares so that, fed with the narrow net's own activations so far, it reproduces
the wide conv's outputs (before its activation) on those channels (the last conv: all of them).
Measured the same way, before any training: 38.0 dB (50 features: 39.4), from 192 training inputs
(2.3 min for both branches on 2 cores, the inputs read from a folder of 30,407); the sliced 36
still scored 21.9 after 400 distilled iterations.
"""
import random
from typing import List, Sequence

import torch
import torch.nn.functional as F


def _convs(net: torch.nn.Module, what: str) -> List[torch.nn.Conv2d]:
    """The convolutions of a plain chain, in order; anything else with weights is refused by name."""
    convs = []
    for name, m in net.named_modules():
        own = [p for p in m.parameters(recurse=False)]
        if isinstance(m, torch.nn.Conv2d):
            if m.groups != 1 or m.stride != (1, 1) or m.padding_mode != "zeros":
                raise ValueError(f"init_narrow 'prune': {what}.{name} has groups {m.groups}, stride {m.stride}, "
                                 f"padding mode {m.padding_mode!r}; only a chain of plain stride-1 convolutions "
                                 f"with zero padding can be pruned")
            convs.append(m)
        elif own:
            raise ValueError(f"init_narrow 'prune': {what}.{name} ({type(m).__name__}) has weights of its own; "
                             f"only a chain of convolutions with parameter-free activations can be pruned "
                             f"(init_narrow 'slice' works for any arch)")
    return convs


def _trace(net: torch.nn.Module, convs, x: torch.Tensor):
    """Each conv's input and output on x."""
    ins, outs = [None] * len(convs), [None] * len(convs)

    def keep(i):
        def hook(module, args, out):  # returns None: the forward goes on unchanged
            ins[i], outs[i] = args[0], out.clone()  # an in-place activation would overwrite it
        return hook
    hooks = [c.register_forward_hook(keep(i)) for i, c in enumerate(convs)]
    try:
        net(x)
    finally:
        for h in hooks:
            h.remove()
    return ins, outs


def check_chain(convs, ins, outs, what: str = "base") -> None:
    """Conv i+1's input must be a monotone elementwise function of conv i's output (ReLU, leaky
    ReLU, identity): not so where a skip adds another tensor or a shuffle moves pixels."""
    for i in range(len(convs) - 1):
        y, x = outs[i], ins[i + 1]
        if x.shape != y.shape:
            raise ValueError(f"init_narrow 'prune': {what}: conv {i + 1}'s input {tuple(x.shape)} is not conv {i}'s "
                             f"output {tuple(y.shape)}: not a plain chain (use init_narrow 'slice')")
        yc, xc = y.transpose(0, 1).flatten(1), x.transpose(0, 1).flatten(1)
        order = yc.argsort(1)
        xs = xc.gather(1, order)
        tol = 1e-5 * (1 + xc.abs().amax())
        if bool((xs[:, 1:] < xs[:, :-1] - tol).any()):
            raise ValueError(f"init_narrow 'prune': {what}: conv {i + 1}'s input is not an elementwise function of "
                             f"conv {i}'s output (a skip connection?): not a plain chain (use init_narrow 'slice')")


@torch.no_grad()
def prune_init(narrow: torch.nn.Module, wide: torch.nn.Module, inputs: torch.Tensor, ridge: float = 1e-5) -> float:
    """Initialise `narrow` (the same chain with fewer channels) from `wide` on calibration
    `inputs` [N, C, H, W]. Returns the narrow net's output MSE against the wide one's on them."""
    wc, nc = _convs(wide, "base"), _convs(narrow, "narrow branch")
    if len(wc) != len(nc):
        raise ValueError(f"init_narrow 'prune': the narrow branch has {len(nc)} convolutions, the base {len(wc)}")
    ins, outs = _trace(wide, wc, inputs)
    check_chain(wc, ins, outs)
    for i, (w, n) in enumerate(zip(wc, nc)):
        if n.out_channels > w.out_channels or n.kernel_size != w.kernel_size:
            raise ValueError(f"init_narrow 'prune': the narrow branch's conv {i} ({n.out_channels} outputs, kernel "
                             f"{n.kernel_size}) is not a narrower copy of the base's ({w.out_channels}, {w.kernel_size})")
        x = _trace(narrow, nc, inputs)[0][i]  # the narrow net's own activations, earlier convs refitted
        y = outs[i]
        if i < len(nc) - 1:
            keep = F.relu(y).pow(2).mean((0, 2, 3)).argsort(descending=True)[:n.out_channels].sort().values
            y = y[:, keep]
        elif n.out_channels != w.out_channels:
            raise ValueError(f"init_narrow 'prune': the last convolution has {n.out_channels} outputs, the base's "
                             f"{w.out_channels}")
        cols = F.unfold(x, n.kernel_size, dilation=n.dilation, padding=n.padding)  # [N, Cin*k*k, L]
        a = cols.transpose(1, 2).reshape(-1, cols.shape[1]).double()
        if n.bias is not None:
            a = torch.cat([a, torch.ones(len(a), 1, dtype=a.dtype)], 1)
        t = y.permute(0, 2, 3, 1).reshape(-1, y.shape[1]).double()
        gram = a.T @ a
        gram += ridge * gram.diagonal().mean() * torch.eye(len(gram), dtype=gram.dtype)
        sol = torch.linalg.solve(gram, a.T @ t)  # [Cin*k*k (+1), Cout]
        k = n.weight[0].numel()
        n.weight.copy_(sol[:k].T.reshape(n.weight.shape))
        if n.bias is not None:
            n.bias.copy_(sol[k])
    return float((narrow(inputs) - wide(inputs)).pow(2).mean())


def calibration_inputs(folder: str, count: int = 192, seed: int = 0) -> torch.Tensor:
    """`count` input images of one size (the training sub-images: prepare's lq/ folder), drawn
    with a fixed seed, as [count, C, H, W] in [0, 1]."""
    from .imageio import list_images, read_picture
    try:
        paths = list_images(folder, quiet=True)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"prune_data: {e}") from None
    picked = random.Random(seed).sample(paths, min(count, len(paths)))
    imgs = [read_picture(p).rgb for p in picked]
    shapes = {tuple(t.shape) for t in imgs}
    if len(shapes) > 1:
        raise ValueError(f"prune_data: {folder} holds images of several sizes {sorted(shapes)[:3]}: give the "
                         f"training sub-images (classsr prepare's lq/)")
    return torch.stack(imgs)


def prune_branches(model, inputs: torch.Tensor, ridge: float = 1e-5) -> List[float]:
    """Every narrow branch of a ClassSR model from its widest -> their output MSEs on `inputs`."""
    wide = model.branches[-1]
    was = [b.training for b in model.branches]
    for b in model.branches:
        b.eval()
    try:
        return [prune_init(b, wide, inputs, ridge) for b in model.branches[:-1]]
    finally:
        for b, t in zip(model.branches, was):
            b.train(t)


__all__: Sequence[str] = ["prune_init", "prune_branches", "calibration_inputs", "check_chain"]
