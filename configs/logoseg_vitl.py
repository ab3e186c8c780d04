# LoGoSeg, CLIP ViT-L/14 at 336x336 (24x24 patches, as ViT-B/16 at 384).
_base_ = ['./logoseg_vitb.py']
crop_size = (336, 336)
model = dict(
    data_preprocessor=dict(size=crop_size),
    clip=dict(model_name='ViT-L-14-quickgelu', pretrained='openai', mid_layer=11, guidance_layers=(15, 7)),
    # CAT-Seg's windows (384, stride 256, inherited), each resized to ViT-L's 336 input. The earlier scheme,
    # 336 windows fed as they are (3 x 3 of them): test_cfg.crop_size=(336,336) test_cfg.stride=(224,224)
    test_cfg=dict(input_size=crop_size),
)
train_dataloader = dict(dataset=dict(pipeline=[
    dict(step, crop_size=crop_size) if step['type'] == 'RandomCrop' else step for step in _base_.train_pipeline]))
