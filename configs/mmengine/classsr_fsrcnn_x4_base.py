# ClassSR-FSRCNN x4 on mmengine alone (no MMagic): what the three phase configs share.
# Data: classsr prepare --hr <HR folder> --out data/classsr_x4
#       classsr prepare --whole --hr <val HR folder> --out data/classsr_val_x4
custom_imports = dict(imports=['classsr_plugin.registry.mmengine'], allow_failed_imports=False)
default_scope = 'mmengine'

model = dict(
    type='ClassSREngineModel',
    generator=dict(
        type='ClassSR', num_classes=3,
        base=dict(type='FSRCNN', num_in_ch=3, num_out_ch=3, d=56, s=12, m=4, upscale=4, residual=True),
        classifier=dict(type='ClassModule', nf=32)),  # 1.4% of a d=56 tile (nf 128: 15%)
    pixel_loss=dict(type='WeightedL1Loss', loss_weight=1000.0),
    class_loss=dict(type='ClassLoss', loss_weight=0.5),
    average_loss=dict(type='AverageLoss', loss_weight=3.0),
    val_tile=32, val_stride=28)

train_dataloader = dict(
    batch_size=16, num_workers=2, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ClassSRSubImages', data_root='data/classsr_x4'))
val_dataloader = dict(
    batch_size=1, num_workers=1, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ClassSRPairs', data_root='data/classsr_val_x4'))
val_evaluator = dict(type='ClassSRMetric', crop_border=4)
val_cfg = dict(type='ValLoop')

train_cfg = dict(type='IterBasedTrainLoop', max_iters=500000, val_interval=5000)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3, betas=(0.9, 0.99)))
param_scheduler = dict(type='CosineAnnealingLR', T_max=500000, eta_min=1e-7, by_epoch=False)

custom_hooks = [dict(type='ClassSRHook', interval=100)]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='CheckpointHook', interval=5000, by_epoch=False, max_keep_ckpts=2,
                    save_best='classsr/psnr', rule='greater'))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))  # nccl on GPUs
randomness = dict(seed=0)
