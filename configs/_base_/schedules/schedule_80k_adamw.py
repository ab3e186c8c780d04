# Paper sec 3.2: AdamW, lr 2e-4, weight decay 1e-4, image encoder at 0.01x, warm-up + cosine, 80k iterations.
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='FrozenAwareOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4),
    # `backbone` is the CLIP image encoder; the text encoder is frozen and left out of the optimizer.
    # The state-space decay (A_log) and skip (D) parameters of SS2D are not weight-decayed, as in Mamba.
    paramwise_cfg=dict(custom_keys={
        'backbone': dict(lr_mult=0.01),
        'global_context.A_log': dict(decay_mult=0.0),
        'global_context.D': dict(decay_mult=0.0),
    }),
)
warmup_iters = 1500
max_iters = 80000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=False, begin=warmup_iters, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=8000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=8000, max_keep_ckpts=3, save_best='mIoU'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'),
)
