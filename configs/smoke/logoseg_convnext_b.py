# Smoke profile of ../logoseg_convnext_b.py: a random-init timm ConvNeXt (convnext_atto) whose stride 32
# needs 192x192 crops for a 6x6 grid (the default region grid r = 6; the paper's 640 crops give 20x20),
# whole-image inference at 192 (the paper's 640), one crop per step (the paper's per-GPU batch) and 100 steps to
# keep the 192-pixel loss affordable on a CPU.
_base_ = ['./logoseg_vitb.py']
crop_size = (192, 192)
model = dict(
    data_preprocessor=dict(size=crop_size),
    clip=dict(model_name='LoGoSeg-Tiny-ConvNeXt', mid_layer=2, guidance_layers=(2, 1)),
    # a CNN takes the whole test image at once, as ../logoseg_convnext_b.py
    test_cfg=dict(_delete_=True, mode='whole'),
)
train_scale, test_scale = (1280, 320), (192, 192)
_steps = dict(RandomResize=dict(scale=train_scale), RandomCrop=dict(crop_size=crop_size))
train_pipeline = [dict(step, **_steps.get(step['type'], {})) for step in _base_.train_pipeline]
test_pipeline = [dict(step, scale=test_scale) if step['type'] == 'Resize' else step
                 for step in _base_.test_pipeline]
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
max_iters = 100
param_scheduler = [dict(_base_.param_scheduler[0]), dict(_base_.param_scheduler[1], end=max_iters)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters // 2))  # half-way, as the ViT smoke config
