# Phase 1 of 3: every branch on the sub-images of its own difficulty class (L1 only).
# Run: classsr mmtrain configs/mmengine/classsr_fsrcnn_x4_1_branches.py  (DDP: torchrun ... --launcher pytorch)
_base_ = './classsr_fsrcnn_x4_base.py'
model = dict(phase='branches',
             init_base=None,         # the trained FSRCNN (d=56): the widest branch (required while frozen)
             init_narrow='scratch',  # or 'slice': leading channels of the widest branch
             freeze_widest=True,     # the widest branch stays init_base; False: train it here
             distill=0.0,            # weight of L1 to the widest branch's output
             pixel_loss=dict(loss_weight=1.0))
work_dir = 'work_dirs/classsr_fsrcnn_x4_1_branches'
