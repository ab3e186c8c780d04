# LoGoSeg, CLIP ViT-L/14 at 336x336 (24x24 patches, as ViT-B/16 at 384).
_base_ = ['./logoseg_vitb.py']
crop_size = (336, 336)
model = dict(
    data_preprocessor=dict(size=crop_size),
    clip=dict(model_name='ViT-L-14-quickgelu', pretrained='openai', mid_layer=11, guidance_layers=(15, 7)),
    test_cfg=dict(crop_size=crop_size, stride=(224, 224)),
)
train_dataloader = dict(dataset=dict(pipeline=[
    dict(step, crop_size=crop_size) if step['type'] == 'RandomCrop' else step for step in _base_.train_pipeline]))
