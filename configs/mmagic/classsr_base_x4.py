# What every ClassSR x4 config for MMagic shares (phase 1 settings; phase 2 and 3 files override).
# Data: classsr prepare --hr <HR folder> --out data/classsr_x4
#       classsr prepare --whole --hr <val HR folder> --out data/classsr_val_x4
# Run:  classsr mmtrain configs/mmagic/classsr_msrresnet_x4_1_branches.py
#       (DDP: torchrun --nproc_per_node N -m classsr_plugin.cli mmtrain CONFIG --launcher pytorch)
default_scope = 'mmagic'
custom_imports = dict(imports=['classsr_plugin.registry.mmagic'], allow_failed_imports=False)

model = dict(
    type='ClassSREditModel',
    generator=dict(type='ClassSR', num_classes=3, base=dict()),  # base: set per network
    pixel_loss=dict(type='L1Loss', loss_weight=1.0, reduction='mean'),
    phase='branches',
    init_base=None,           # a trained checkpoint of the same generator: the widest branch
    init_narrow='scratch',    # or 'slice': leading channels of the widest branch
    freeze_widest=True,       # the widest branch stays init_base in every phase; False: train it
    distill=0.0,              # phase 1: weight of L1 to the widest branch's output
    val_tile=32, val_stride=28,
    data_preprocessor=dict(type='DataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.]))
# DDP's find_unused_parameters follows the phase (classsr mmtrain sets it; with MMagic's own
# tools/train.py add model_wrapper_cfg = dict(type='MMDistributedDataParallel',
# find_unused_parameters=True) to phase 1: a batch need not hold every class)

load = dict(type='LoadImageFromFile', color_type='color', channel_order='rgb', imdecode_backend='cv2')
train_pipeline = [
    dict(load, key='img'), dict(load, key='gt'),
    dict(type='Flip', keys=['img', 'gt'], flip_ratio=0.5, direction='horizontal'),
    dict(type='Flip', keys=['img', 'gt'], flip_ratio=0.5, direction='vertical'),
    dict(type='RandomTransposeHW', keys=['img', 'gt'], transpose_ratio=0.5),
    dict(type='PackInputs', meta_keys=['classsr_label'])]  # the difficulty class, for phase 1
val_pipeline = [dict(load, key='img'), dict(load, key='gt'), dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=16, num_workers=4, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='ClassSRSubImages', data_root='data/classsr_x4', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=1, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='BasicImageDataset', metainfo=dict(dataset_type='classsr_val', task_name='sisr'),
                 data_root='data/classsr_val_x4', data_prefix=dict(img='lr', gt='hr'),
                 pipeline=val_pipeline))
val_evaluator = dict(type='Evaluator', metrics=[
    dict(type='PSNR', crop_border=4), dict(type='SSIM', crop_border=4), dict(type='ClassSRMetric')])
val_cfg = dict(type='MultiValLoop')
test_dataloader, test_evaluator, test_cfg = val_dataloader, val_evaluator, dict(type='MultiTestLoop')

train_cfg = dict(type='IterBasedTrainLoop', max_iters=500000, val_interval=5000)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=2e-4, betas=(0.9, 0.99)))
param_scheduler = dict(type='CosineAnnealingLR', T_max=500000, eta_min=1e-7, by_epoch=False)

custom_hooks = [dict(type='ClassSRHook', interval=100)]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=5000, by_epoch=False, max_keep_ckpts=2,
                    save_best='PSNR', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'))
log_processor = dict(type='LogProcessor', by_epoch=False)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='nccl'))
randomness = dict(seed=0)
