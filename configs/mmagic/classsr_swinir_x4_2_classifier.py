# Phase 2 of 3: branches frozen, the classifier learns with L1 + ClassLoss + AverageLoss.
_base_ = './classsr_swinir_x4_1_branches.py'
model = dict(phase='classifier', pixel_loss=dict(loss_weight=1000.0))
load_from = 'work_dirs/classsr_swinir_x4_1_branches/iter_500000.pth'  # phase 1's last checkpoint
train_dataloader = dict(batch_size=96)
train_cfg = dict(max_iters=200000)
param_scheduler = dict(T_max=200000)
work_dir = 'work_dirs/classsr_swinir_x4_2_classifier'
