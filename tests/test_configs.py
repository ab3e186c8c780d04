"""Every shipped config parses and builds its model (random init: no weights are downloaded in tests)."""
import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS

from .conftest import REPO

PAPER = {
    # config: (CLIP model, crop, image-encoder parameters in millions (approx.))
    'logoseg_vitb.py': ('ViT-B-16-quickgelu', 384, 86),
    'logoseg_vitl.py': ('ViT-L-14-quickgelu', 336, 304),
    'logoseg_convnext_b.py': ('convnext_base_w_320', 640, 88),
    'logoseg_convnext_l.py': ('convnext_large_d_320', 640, 200),
}


@pytest.mark.parametrize('name', sorted(PAPER))
def test_paper_configs_build_their_model(name):
    cfg = Config.fromfile(str(REPO / 'configs' / name))
    model_name, crop, encoder_millions = PAPER[name]
    assert cfg.model.clip.model_name == model_name and cfg.crop_size == (crop, crop)
    assert cfg.model.data_preprocessor.size == (crop, crop)
    assert cfg.optim_wrapper.optimizer.lr == 2e-4 and cfg.optim_wrapper.optimizer.weight_decay == 1e-4
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys['backbone'].lr_mult == 0.01
    assert cfg.train_cfg.max_iters == 80000
    assert cfg.model.clip.pretrained  # paper configs name real weights
    cfg.model.clip.pretrained = None
    model = MODELS.build(cfg.model)
    encoder = sum(p.numel() for p in model.backbone.parameters()) / 1e6
    assert encoder == pytest.approx(encoder_millions, rel=0.25)
    assert not any(p.requires_grad for p in model.text_encoder.parameters())
    # CAT-Seg's test protocol: ViTs score 384 windows (stride 256) + a global view, each at the encoder's input
    vit_test = dict(mode='slide_global', crop_size=(384, 384), stride=(256, 256), input_size=(crop, crop))
    assert model.test_cfg == (dict(mode='whole') if 'convnext' in name else vit_test)
    head = model.decode_head
    assert head.use_object_prior and hasattr(head, 'alignment') and hasattr(head, 'fusion')
    assert len(head.fusion.layers) == 2


def test_vitb_forward_at_the_training_crop():
    cfg = Config.fromfile(str(REPO / 'configs' / 'logoseg_vitb.py'))
    cfg.model.clip.pretrained = None
    model = MODELS.build(cfg.model).eval()
    model.set_vocabulary(['cat', 'dog', 'sky'])
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 384, 384), mode='tensor')
    assert logits.shape == (1, 3, 96, 96)  # 24x24 patches, decoded x4


def test_smoke_config_is_the_same_model_at_toy_width(smoke_cfg):
    vitb = Config.fromfile(str(REPO / 'configs' / 'logoseg_vitb.py'))
    assert smoke_cfg.model.type == vitb.model.type
    same = {k for k in vitb.model.decode_head if vitb.model.decode_head[k] == smoke_cfg.model.decode_head[k]}
    for switch in ('use_object_prior', 'use_region_alignment', 'use_fusion', 'use_dir_attn',
                   'use_global_context', 'fusion_depth', 'prior_lambda', 'loss_decode'):
        assert switch in same  # only sizes differ
