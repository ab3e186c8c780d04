# Smoke profile of ../logoseg_convnext_l.py: a wider random-init timm ConvNeXt (convnext_femto) in place of
# ./logoseg_convnext_b.py's convnext_atto.
_base_ = ['./logoseg_convnext_b.py']
model = dict(clip=dict(model_name='LoGoSeg-Smoke-ConvNeXt-L'))
