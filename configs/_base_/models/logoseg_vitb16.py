# LoGoSeg with OpenAI CLIP ViT-B/16 (paper sec 2; defaults are the "Full" rows of Tables 2-4).
# OpenAI's CLIP uses QuickGELU: the `-quickgelu` open_clip architecture matches its weights.
crop_size = (384, 384)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    # CLIP's normalisation, in RGB, on 0-255 pixels
    mean=[122.7709383, 116.7460125, 104.09373615],
    std=[68.5005327, 66.6321579, 70.32316305],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size,
)
model = dict(
    type='LoGoSeg',
    data_preprocessor=data_preprocessor,
    clip=dict(model_name='ViT-B-16-quickgelu', pretrained='openai', mid_layer=5, guidance_layers=(7, 3)),
    prompt_templates=('A photo of a {} in the scene', ),
    decode_head=dict(
        type='LoGoSegHead',
        guidance_dim=128,
        num_queries=16,
        region_grid=6,
        tau=100.0,
        beta=100.0,
        prior_lambda=1.0,
        use_object_prior=True,
        prior_on_logits=True,
        use_region_alignment=True,
        use_fusion=True,
        use_dir_attn=True,
        use_global_context=True,
        fusion_depth=2,
        num_heads=4,
        ss2d_cfg=dict(d_state=16, expand=2.0),
        decoder_channels=(64, 32),
        loss_decode=dict(type='MaskedBCELoss', normalize='valid_pixels'),
        ignore_index=255,
    ),
    train_cfg=dict(),
    # CAT-Seg's test protocol: on the 640x640 test image, 384x384 windows with stride 256 (2 x 2) plus one global
    # view, each resized to the image encoder's input (its training crop) before the forward
    test_cfg=dict(mode='slide_global', crop_size=(384, 384), stride=(256, 256), input_size=crop_size),
)
