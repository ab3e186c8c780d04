# CPU smoke profile: the full LoGoSeg model at toy width on random-init CLIP-shaped towers, trained on a
# generated shapes dataset (created under prepared/smoke on first use). Minutes on a laptop CPU.
_base_ = [
    './_base_/models/logoseg_vitb16.py',
    './_base_/schedules/schedule_80k_adamw.py',
    './_base_/default_runtime.py',
]
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    clip=dict(model_name='LoGoSeg-Tiny-ViT', pretrained=None, mid_layer=1, guidance_layers=(2, 0)),
    decode_head=dict(guidance_dim=32, num_queries=4, region_grid=4, num_heads=2, decoder_channels=(16, 16),
                     ss2d_cfg=dict(d_state=4, expand=1.0)),
    test_cfg=dict(_delete_=True, mode='whole'),
)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
# DDP on CPU modules needs device_ids=None (also valid for one GPU per process)
model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None)

data_root = 'prepared/smoke'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSegAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSegAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='SmokeShapesDataset', data_root=data_root, split='train', num_images=64,
                 pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='SmokeShapesDataset', data_root=data_root, split='val', num_images=16,
                 pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='HallucinationIoUMetric')
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=2e-3))
max_iters = 400
warmup_iters = 40
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=False, begin=warmup_iters, end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1, save_best=None),
)
