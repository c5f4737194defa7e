"""ClassSR's Class-Loss and Average-Loss, for any number of classes M.

Both take probabilities p of shape [B, M] (softmax of the classifier's logits)."""
import torch
import torch.nn as nn


def class_loss(p: torch.Tensor) -> torch.Tensor:
    """(M - 1) - sum_{i<j} |p_i - p_j|, averaged over the batch. Zero for one-hot rows, so it
    pushes every sub-image towards a confident choice."""
    m = p.shape[1]
    spread = (p[:, :, None] - p[:, None, :]).abs().sum((1, 2)) / 2
    return (m - 1 - spread).mean()


def average_loss(p: torch.Tensor) -> torch.Tensor:
    """sum_j |sum_b p_bj - B/M| / (4 B/M): zero when every class gets an equal share of the
    batch, so the classifier cannot send everything to the widest branch."""
    b, m = p.shape
    share = b / m
    return (p.sum(0) - share).abs().sum() / (4 * share)


class _Weighted(nn.Module):
    """A loss of the probabilities times loss_weight, as BasicSR's and mmengine's losses are."""
    fn = None

    def __init__(self, loss_weight=1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, p):
        return self.loss_weight * type(self).fn(p)


class ClassLoss(_Weighted):
    fn = staticmethod(class_loss)


class AverageLoss(_Weighted):
    fn = staticmethod(average_loss)
