# Phase 1 of 3: every branch on the sub-images of its own difficulty class (L1 only).
# Run: classsr mmtrain configs/mmengine/classsr_fsrcnn_x4_1_branches.py  (DDP: torchrun ... --launcher pytorch)
_base_ = './classsr_fsrcnn_x4_base.py'
model = dict(phase='branches',
             init_base=None,         # a pretrained FSRCNN (d=56) checkpoint for the widest branch
             init_narrow='scratch',  # or 'slice': leading channels of the widest branch
             pixel_loss=dict(loss_weight=1.0))
# a batch need not hold every class: DDP must expect parameters without gradients
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
work_dir = 'work_dirs/classsr_fsrcnn_x4_1_branches'
