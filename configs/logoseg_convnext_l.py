# LoGoSeg, OpenCLIP ConvNeXt-L (LAION, 320 px pretraining), 640x640 crops.
_base_ = ['./logoseg_convnext_b.py']
model = dict(clip=dict(model_name='convnext_large_d_320', pretrained='laion2b_s29b_b131k_ft_soup'))
