"""The LoGoSeg segmentor: MMSeg's EncoderDecoder with CLIP encoders and an open vocabulary."""
from __future__ import annotations

from typing import Sequence

import open_clip
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmseg.models.segmentors import BaseSegmentor, EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, SampleList

from ..evaluation import merge_background
from ..utils.errors import LoGoSegUserError
from ..utils.options import check_choice, check_keys, check_registered, check_size
from ..utils.palette import vocabulary_palette
from ..utils.vocab import VOCABULARIES, check_vocabulary
from .clip_encoders import PAPER_TEMPLATES, CLIPTextEncoder, build_image_encoder, create_clip
from .head import resize_class_maps

INFERENCE_MODES = ('whole', 'slide', 'slide_global')
TEST_OPTIONS = ('mode', 'crop_size', 'stride', 'input_size')
CLIP_OPTIONS = ('model_name', 'pretrained', 'cache_dir', 'mid_layer', 'guidance_layers')


@MODELS.register_module()
class LoGoSeg(EncoderDecoder):
    """Open-vocabulary segmentor (paper sec 2): the vocabulary is data, not a layer.

    Args:
        clip: ``model_name`` and ``pretrained`` (open_clip tag, local file or None) and optional
            ``cache_dir``; ``mid_layer`` / ``guidance_layers`` pick F_mid and (S_1, S_2) (ViT blocks or
            ConvNeXt stages, 0-based).
        decode_head: :class:`LoGoSegHead` config; the CLIP channel sizes are filled in here.
        vocabulary: initial class names or a shipped vocabulary name (``'coco'``, ``'ade150'``, ...);
            runs through mmengine take it from the dataset's metainfo instead (``VocabularyHook``).
        prompt_templates: P templates per class.
        test_cfg: ``mode`` is ``'whole'``, ``'slide'`` (MMSeg's logit averaging) or ``'slide_global'``
            (CAT-Seg: sigmoid scores averaged over windows, then with one global view of the whole image;
            ``seg_logits`` then holds these scores). Slide modes take ``crop_size`` (the window) and
            ``stride``, and optionally ``input_size``: every window (and the global view) is resized to it
            before the forward and its scores resized back, as CAT-Seg feeds CLIP its input resolution
            (default: windows go in at their own size).
        pretrained: MMSeg's generic backbone-weights argument, which ``mmseg.apis.init_model`` sets to None;
            LoGoSeg's CLIP weights come from ``clip.pretrained``.

    Raises:
        LoGoSegUserError: an unknown option anywhere in the model config (``model.*``, ``clip``,
            ``decode_head``, ``test_cfg``, ...) or a value out of range, in one line naming the option.
    """

    def __init__(self, clip: ConfigType, decode_head: ConfigType, vocabulary: str | Sequence[str] | None = None,
                 prompt_templates: str | Sequence[str] = PAPER_TEMPLATES, train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None, data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None, pretrained: str | None = None, **unknown):
        # a typo reaches here as an unknown keyword: one line instead of Python's TypeError
        check_keys(unknown, ('clip', 'decode_head', 'vocabulary', 'prompt_templates', 'train_cfg', 'test_cfg',
                             'data_preprocessor', 'init_cfg', 'pretrained'), 'model')
        if pretrained is not None:
            raise LoGoSegUserError('LoGoSeg takes its CLIP weights from model.clip.pretrained, not model.pretrained')
        clip = dict(clip)
        check_keys(clip, CLIP_OPTIONS, 'model.clip')
        for key in ('model_name', 'mid_layer', 'guidance_layers'):
            if key not in clip:
                raise LoGoSegUserError(f'model.clip.{key} is missing; model.clip needs model_name, mid_layer and '
                                       'guidance_layers (see configs/_base_/models/logoseg_vitb16.py)')
        check_registered(decode_head, MODELS, 'model.decode_head',
                         set_here=('clip_dim', 'mid_channels', 'guidance_channels'))
        if isinstance(data_preprocessor, dict):
            check_registered(data_preprocessor, MODELS, 'model.data_preprocessor')
        check_keys(train_cfg or {}, (), 'model.train_cfg')
        test_cfg = self._checked_test_cfg(test_cfg)
        if isinstance(prompt_templates, str):
            prompt_templates = (prompt_templates,)
        BaseSegmentor.__init__(self, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        model_name = clip.pop('model_name')
        layers = dict(mid_layer=clip.pop('mid_layer'), guidance_layers=clip.pop('guidance_layers'))
        clip_model = create_clip(model_name, **clip)
        self.backbone = build_image_encoder(clip_model.visual, **layers)
        clip_model.visual = None  # the text encoder keeps only the text tower
        self.text_encoder = CLIPTextEncoder(clip_model, open_clip.get_tokenizer(model_name), prompt_templates,
                                            model_name=model_name)
        self.decode_head = MODELS.build(dict(
            decode_head, clip_dim=self.backbone.embed_dim, mid_channels=self.backbone.mid_channels,
            guidance_channels=self.backbone.guidance_channels))
        self.align_corners = self.decode_head.align_corners
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        input_size = test_cfg.get('input_size')
        stride = self.backbone.patch_stride
        if input_size is not None and (input_size[0] % stride or input_size[1] % stride):
            raise LoGoSegUserError(f'model.test_cfg.input_size={input_size}: use multiples of the image '
                                   f"encoder's {stride}-pixel patch, e.g. ({24 * stride}, {24 * stride})")
        self.class_names: tuple[str, ...] | None = None
        self.background_index: int | None = None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    @staticmethod
    def _checked_test_cfg(test_cfg: OptConfigType) -> ConfigDict:
        """``test_cfg`` with its sizes as (h, w) tuples; every key and value checked."""
        test_cfg = ConfigDict(test_cfg if test_cfg is not None else dict(mode='whole'))
        # the window keys are accepted in every mode, so `--cfg-options model.test_cfg.mode=whole` works
        check_keys(test_cfg, TEST_OPTIONS, 'model.test_cfg')
        mode = check_choice('model.test_cfg.mode', test_cfg.get('mode', 'whole'), INFERENCE_MODES)
        for key in ('crop_size', 'stride'):
            if mode != 'whole' and test_cfg.get(key) is None:
                raise LoGoSegUserError(f'model.test_cfg.{key} is missing: mode={mode!r} needs crop_size (the '
                                       'window) and stride, e.g. crop_size=(384, 384), stride=(256, 256)')
        for key in ('crop_size', 'stride', 'input_size'):
            if test_cfg.get(key) is not None:
                test_cfg[key] = check_size(f'model.test_cfg.{key}', test_cfg[key])
        crop, stride = test_cfg.get('crop_size'), test_cfg.get('stride')
        if crop and stride and (stride[0] > crop[0] or stride[1] > crop[1]):
            raise LoGoSegUserError(f'model.test_cfg.stride={stride}: larger than crop_size={crop}, windows would '
                                   'leave pixels unscored; use a stride <= crop_size')
        return test_cfg

    def set_vocabulary(self, class_names: str | Sequence[str], background_index: int | None = None) -> None:
        """Prompt the model with these classes from now on (any N; embeddings are cached per vocabulary).

        ``class_names``: a list of names, or the name of a shipped vocabulary (``'ade150'``, ...).
        """
        names = check_vocabulary(class_names)
        if background_index is not None and not 0 <= background_index < len(names):
            raise LoGoSegUserError(f'background_index {background_index} outside the {len(names)} classes')
        self.class_names = names
        self.background_index = background_index
        # what MMSeg's inference_model / show_result_pyplot read: the label space of the predictions
        classes = names if background_index is None else names[:background_index] + ('background', )
        given = self._assigned_meta or {}
        palette = given.get('palette')
        if tuple(given.get('classes', ())) != classes or len(palette or ()) != len(classes):
            palette = vocabulary_palette(len(classes))
        self._vocabulary_meta = dict(classes=classes, palette=[tuple(c) for c in palette], prompt_classes=names,
                                     background_index=background_index)

    _assigned_meta: dict | None = None
    _vocabulary_meta: dict | None = None

    @property
    def dataset_meta(self) -> dict | None:
        """``classes`` (the predicted label space) and ``palette`` of the current vocabulary, plus
        ``prompt_classes`` and ``background_index``.

        ``mmseg.apis.init_model`` assigns the checkpoint's training metainfo here; it is the vocabulary until
        ``set_vocabulary`` (or the config's ``model.vocabulary``) sets another.
        """
        if self.class_names is None and not (self._assigned_meta or {}).get('classes'):
            return None
        self.vocabulary  # noqa: B018  (adopts the assigned metainfo when no vocabulary is set)
        return self._vocabulary_meta

    @dataset_meta.setter
    def dataset_meta(self, meta: dict | None) -> None:
        self._assigned_meta = dict(meta) if meta else None

    @property
    def vocabulary(self) -> tuple[str, ...]:
        if self.class_names is None:
            meta = self._assigned_meta or {}
            if meta.get('classes'):  # set by mmseg.apis.init_model from the checkpoint
                self.set_vocabulary(meta.get('prompt_classes', meta['classes']), meta.get('background_index'))
            else:
                raise LoGoSegUserError(
                    'no vocabulary: call model.set_vocabulary([...]), pass model.vocabulary in the config '
                    f'(a list or one of {", ".join(VOCABULARIES)}), or add VocabularyHook to custom_hooks')
        return self.class_names

    @property
    def num_classes(self) -> int:
        return len(self.vocabulary)

    @property
    def out_channels(self) -> int:
        return len(self.vocabulary)

    def encode_decode(self, inputs: torch.Tensor, batch_img_metas: list[dict]) -> torch.Tensor:
        """Logits (B, N, H, W) of the inputs (B, 3, H, W); an input smaller than one patch is padded with
        zeros (the normalised mean, as SegDataPreProcessor pads) to one patch and the logits cropped back."""
        height, width = inputs.shape[-2:]
        patch = self.backbone.patch_stride
        if height >= patch and width >= patch:
            return super().encode_decode(inputs, batch_img_metas)
        padded = F.pad(inputs, (0, max(patch - width, 0), 0, max(patch - height, 0)))
        metas = [dict(meta, img_shape=padded.shape[-2:]) for meta in batch_img_metas]
        return super().encode_decode(padded, metas)[..., :height, :width]

    def extract_feat(self, inputs: torch.Tensor) -> dict:
        """Image features of the batch plus the prompt embeddings T (N, P, C) of the current vocabulary."""
        feats = self.backbone(inputs)
        feats['text'] = self.text_encoder(self.vocabulary).to(feats['visual'].dtype)
        return feats

    def inference(self, inputs: torch.Tensor, batch_img_metas: list[dict]) -> torch.Tensor:
        mode = self.test_cfg.get('mode', 'whole')
        if mode == 'slide_global':
            return self.slide_global_inference(inputs, batch_img_metas)
        if mode == 'slide':
            return self.slide_inference(inputs, batch_img_metas)
        return self.whole_inference(inputs, batch_img_metas)

    def window_boxes(self, height: int, width: int) -> list[tuple[int, int, int, int]]:
        """(y1, x1, y2, x2) of the ``crop_size`` windows at ``stride`` that tile a height x width image,
        row-major; the last row and column are shifted back to end at the border (MMSeg's placement)."""
        h_stride, w_stride = self.test_cfg['stride']
        h_crop, w_crop = self.test_cfg['crop_size']
        h_grids = max(height - h_crop + h_stride - 1, 0) // h_stride + 1
        w_grids = max(width - w_crop + w_stride - 1, 0) // w_stride + 1
        boxes = []
        for h_idx in range(h_grids):
            for w_idx in range(w_grids):
                y1 = max(min(h_idx * h_stride, height - h_crop), 0)
                x1 = max(min(w_idx * w_stride, width - w_crop), 0)
                boxes.append((y1, x1, min(y1 + h_crop, height), min(x1 + w_crop, width)))
        return boxes

    def window_logits(self, window: torch.Tensor, batch_img_metas: list[dict]) -> torch.Tensor:
        """Logits (B, N, h, w) of one window (B, 3, h, w), run at ``test_cfg.input_size`` when set."""
        size = torch.Size(window.shape[2:])
        input_size = self.test_cfg.get('input_size')
        if input_size is not None and tuple(input_size) != tuple(size):
            window = F.interpolate(window, size=tuple(input_size), mode='bilinear', align_corners=False)
        # a torch.Size img_shape makes the head resize its logits straight to the window (one interpolation)
        metas = [dict(meta, img_shape=size) for meta in batch_img_metas]
        return self.encode_decode(window, metas)

    def slide_inference(self, inputs: torch.Tensor, batch_img_metas: list[dict]) -> torch.Tensor:
        """MMSeg's sliding window: logits averaged over overlapping windows (with ``input_size`` support)."""
        return self._average_windows(inputs, batch_img_metas, lambda logits: logits)

    def slide_global_inference(self, inputs: torch.Tensor, batch_img_metas: list[dict]) -> torch.Tensor:
        """CAT-Seg's test protocol (``inference_sliding_window``): sigmoid scores averaged over the windows,
        then averaged with the scores of one global view (the image resized to ``crop_size``).

        Returns the averaged sigmoid scores, not logits: a logit of them would clamp near 1 and tie confident
        classes.
        """
        height, width = inputs.shape[2:]
        probs = self._average_windows(inputs, batch_img_metas, torch.sigmoid)
        view = F.interpolate(inputs, size=tuple(self.test_cfg['crop_size']), mode='bilinear', align_corners=False)
        global_probs = resize_class_maps(self.window_logits(view, batch_img_metas).sigmoid(), (height, width))
        return (probs + global_probs) / 2

    def _average_windows(self, inputs: torch.Tensor, batch_img_metas: list[dict], score) -> torch.Tensor:
        """score(window logits) averaged over the windows covering each pixel: (B, N, H, W)."""
        batch, _, height, width = inputs.shape
        total = inputs.new_zeros((batch, self.out_channels, height, width))
        counts = inputs.new_zeros((batch, 1, height, width))
        for y1, x1, y2, x2 in self.window_boxes(height, width):
            total[:, :, y1:y2, x1:x2] += score(self.window_logits(inputs[:, :, y1:y2, x1:x2], batch_img_metas))
            counts[:, :, y1:y2, x1:x2] += 1
        return total / counts

    def postprocess_result(self, seg_logits: torch.Tensor, data_samples: SampleList | None = None) -> SampleList:
        """Eq 12 (drop the padding, bilinear resize to the original image; done by MMSeg's EncoderDecoder)
        followed by the background merge of benchmarks such as PAS-20b."""
        data_samples = super().postprocess_result(seg_logits, data_samples)
        if seg_logits.shape[1] == 1:  # MMSeg would threshold a binary mask; one class means every pixel is it
            for sample in data_samples:
                sample.pred_sem_seg.data = torch.zeros_like(sample.pred_sem_seg.data, dtype=torch.long)
        if self.background_index is not None:
            for sample in data_samples:
                sample.pred_sem_seg.data = merge_background(sample.pred_sem_seg.data, self.background_index)
        return data_samples
