# Smoke profile of ../logoseg_vitl.py: a deeper and wider random-init ViT (6 blocks of width 96, as ViT-L/14
# is to ViT-B/16) on the same 8x8 grid; everything else as ./logoseg_vitb.py.
_base_ = ['./logoseg_vitb.py']
model = dict(clip=dict(model_name='LoGoSeg-Smoke-ViT-L', mid_layer=2, guidance_layers=(3, 1)))
