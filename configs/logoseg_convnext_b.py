# LoGoSeg, OpenCLIP ConvNeXt-B (LAION, 320 px pretraining), 640x640 crops (20x20 stride-32 grid).
_base_ = ['./logoseg_vitb.py']
crop_size = (640, 640)
model = dict(
    data_preprocessor=dict(size=crop_size),
    clip=dict(model_name='convnext_base_w_320', pretrained='laion_aesthetic_s13b_b82k_augreg', mid_layer=2,
              guidance_layers=(2, 1)),
    # a CNN takes the whole 640x640 test image at once; no windows needed
    test_cfg=dict(_delete_=True, mode='whole'),
)
train_dataloader = dict(dataset=dict(pipeline=[
    dict(step, crop_size=crop_size) if step['type'] == 'RandomCrop' else step for step in _base_.train_pipeline]))
