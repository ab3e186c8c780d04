"""The LoGoSeg segmentor: MMSeg's EncoderDecoder with CLIP encoders and an open vocabulary."""
from __future__ import annotations

from typing import Mapping, Sequence

import open_clip
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmseg.models.segmentors import BaseSegmentor, EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, SampleList

from ..evaluation import merge_background
from ..utils.errors import LoGoSegUserError
from ..utils.options import check_choice, check_int, check_keys, check_registered, check_size
from ..utils.palette import vocabulary_palette
from ..utils.vocab import VOCABULARIES, check_vocabulary
from .clip_encoders import PAPER_TEMPLATES, CLIPTextEncoder, build_image_encoder, create_clip
from .head import LoGoSegHead, resize_class_maps
from .region_alignment import object_prior

INFERENCE_MODES = ('whole', 'slide', 'slide_global')
TEST_OPTIONS = ('mode', 'crop_size', 'stride', 'input_size', 'prior_top_k')
CLIP_OPTIONS = ('model_name', 'pretrained', 'cache_dir', 'mid_layer', 'guidance_layers')
MODEL_OPTIONS = ('clip', 'decode_head', 'vocabulary', 'prompt_templates', 'train_cfg', 'test_cfg',
                 'data_preprocessor', 'init_cfg', 'pretrained')


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
            (default: windows go in at their own size). ``prior_top_k`` (slide_global only, default None):
            only the k classes with the highest object prior (eq 1) of the global view get image-resolution
            scores; the others score 0 everywhere. Every view still runs the network on the whole vocabulary,
            so the kept classes' scores are unchanged; it trades missed classes for speed at large N.
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
        check_keys(unknown, MODEL_OPTIONS, 'model')
        self._check_before_build(clip, decode_head, pretrained, train_cfg, data_preprocessor)
        clip = dict(clip)
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

    @classmethod
    def check_config(cls, model_cfg: dict) -> None:
        """Check ``model_cfg`` (a ``model = dict(type='LoGoSeg', ...)`` config) without building a layer.

        Runs the checks of ``__init__`` and of the head that need no built module, so a command can refuse an
        option before it sets anything up (``logoseg.engine.LoGoSegRunner`` calls it before mmengine's Runner
        logs the config). What depends on the built encoder (a CLIP layer index, the patch size) is checked
        when the model is built.
        """
        model_cfg = {k: v for k, v in dict(model_cfg).items() if k not in ('type', '_scope_')}
        check_keys(model_cfg, MODEL_OPTIONS, 'model')
        if 'clip' not in model_cfg or 'decode_head' not in model_cfg:
            raise LoGoSegUserError(f'model.{"clip" if "clip" not in model_cfg else "decode_head"} is missing')
        cls._check_before_build(model_cfg['clip'], model_cfg['decode_head'], model_cfg.get('pretrained'),
                                model_cfg.get('train_cfg'), model_cfg.get('data_preprocessor'))
        cls._checked_test_cfg(model_cfg.get('test_cfg'))
        if model_cfg.get('vocabulary') is not None:
            check_vocabulary(model_cfg['vocabulary'])
        head = model_cfg['decode_head']
        head_cls = head['type'] if callable(head['type']) else MODELS.get(head['type'])
        if isinstance(head_cls, type) and issubclass(head_cls, LoGoSegHead):
            head_cls.check_config(head)

    @staticmethod
    def _check_before_build(clip, decode_head, pretrained, train_cfg, data_preprocessor) -> None:
        if pretrained is not None:
            raise LoGoSegUserError('LoGoSeg takes its CLIP weights from model.clip.pretrained, not model.pretrained')
        if not isinstance(clip, Mapping):
            raise LoGoSegUserError(f'model.clip={clip!r}: use a dict with model_name, mid_layer and guidance_layers')
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
        if test_cfg.get('prior_top_k') is not None:
            check_int('model.test_cfg.prior_top_k', test_cfg['prior_top_k'], why=' or None (keep every class)')
            if mode != 'slide_global':
                raise LoGoSegUserError(f"model.test_cfg.prior_top_k needs mode='slide_global' (the global view's "
                                       f'object prior ranks the classes), got mode={mode!r}; drop prior_top_k')
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
            palette = vocabulary_palette(classes)
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
        padded = self.pad_to_patch(inputs)
        if padded is inputs:
            return super().encode_decode(inputs, batch_img_metas)
        metas = [dict(meta, img_shape=padded.shape[-2:]) for meta in batch_img_metas]
        return super().encode_decode(padded, metas)[..., :height, :width]

    def pad_to_patch(self, inputs: torch.Tensor) -> torch.Tensor:
        """``inputs`` (B, 3, H, W) padded at the bottom and right with zeros (the normalised mean, as
        SegDataPreProcessor pads) to at least one patch of the image encoder; the same tensor if it is one."""
        height, width = inputs.shape[-2:]
        patch = self.backbone.patch_stride
        if height >= patch and width >= patch:
            return inputs
        return F.pad(inputs, (0, max(patch - width, 0), 0, max(patch - height, 0)))

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

    BATCH_VIEWS_ON_CPU = False  # see view_logits

    def view_logits(self, views: list[torch.Tensor]) -> list[tuple[torch.Tensor, tuple[int, int], torch.Tensor]]:
        """Per view (B, 3, h, w): head-resolution logits (B, N, h', w'), the (h, w) they cover, and the view's
        object prior (B, N) (eq 1).

        Each view is fed at ``test_cfg.input_size`` when set. On a GPU, views of one size run through the
        network as one batch, as CAT-Seg batches its windows and global view (the samples do not interact);
        on a CPU one at a time, which measured faster (docs/benchmarks/design.csv): a view's activations stay
        in cache. The covered size is the view's own, or
        more where a view smaller than a patch was padded (crop the resized logits back with
        :meth:`logits_to_view`).
        """
        input_size = self.test_cfg.get('input_size')
        fed, covered = [], []
        for view in views:
            size = tuple(view.shape[2:])
            if input_size is not None and tuple(input_size) != size:
                view = F.interpolate(view, size=tuple(input_size), mode='bilinear', align_corners=False)
            padded = self.pad_to_patch(view)
            if padded is not view and input_size is None:
                size = tuple(padded.shape[2:])
            view = padded
            fed.append(view)
            covered.append(size)
        results: list = [None] * len(views)
        batched = self.BATCH_VIEWS_ON_CPU or fed[0].device.type != 'cpu'
        keys = [tuple(view.shape[2:]) if batched else i for i, view in enumerate(fed)]
        for key in dict.fromkeys(keys):
            group = [i for i in range(len(fed)) if keys[i] == key]
            feats = self.extract_feat(torch.cat([fed[i] for i in group]))
            logits = self.decode_head(feats).split([len(fed[i]) for i in group])
            prior = object_prior(feats['visual'], feats['text']).split([len(fed[i]) for i in group])
            for i, group_logits, group_prior in zip(group, logits, prior):
                results[i] = (group_logits, covered[i], group_prior)
        return results

    @staticmethod
    def logits_to_view(logits: torch.Tensor, covered: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
        """:meth:`view_logits` output (B, n, h', w') resized to what it covers, cropped to the view: (B, n, *size)."""
        return resize_class_maps(logits, covered)[..., :size[0], :size[1]]

    def slide_inference(self, inputs: torch.Tensor, batch_img_metas: list[dict]) -> torch.Tensor:
        """MMSeg's sliding window: logits averaged over overlapping windows (with ``input_size`` support)."""
        return self._average_windows(inputs, score=None, global_view=False)

    def slide_global_inference(self, inputs: torch.Tensor, batch_img_metas: list[dict]) -> torch.Tensor:
        """CAT-Seg's test protocol (``inference_sliding_window``): sigmoid scores averaged over the windows,
        then averaged with the scores of one global view (the image resized to ``crop_size``).

        Returns the averaged sigmoid scores, not logits: a logit of them would clamp near 1 and tie confident
        classes.
        """
        return self._average_windows(inputs, score=torch.sigmoid_, global_view=True)

    # Classes per pass over the image-resolution maps. With hundreds of classes the per-class work at image
    # resolution (resize, sigmoid, window sums, global view) dominated inference; 16 classes at a time keep its
    # buffer small for a 640 image (16 * 640 * 640 floats, instead of N * 640 * 640 in one pass) and run it on
    # channels-last maps, where PyTorch's CPU bilinear kernel is fastest (16 and 32 measured faster than 8 and
    # 64: docs/benchmarks/design.csv). The
    # per-element arithmetic and its order are those of one pass, so the scores do not depend on this number.
    CLASS_CHUNK = 16

    def _average_windows(self, inputs: torch.Tensor, score, global_view: bool) -> torch.Tensor:
        """``score(window logits)`` averaged over the windows covering each pixel, then, with ``global_view``,
        averaged with the score of the image resized to ``crop_size``: (B, N, H, W).

        The views run through the network together (:meth:`view_logits`) on the whole vocabulary; the
        image-resolution work is done a chunk of classes at a time, for every class or
        (``test_cfg.prior_top_k``) for each image's top k.
        """
        batch, _, height, width = inputs.shape
        boxes = self.window_boxes(height, width)
        views = [inputs[:, :, y1:y2, x1:x2] for y1, x1, y2, x2 in boxes]
        if global_view:
            crop = tuple(self.test_cfg['crop_size'])
            views.append(F.interpolate(inputs, size=crop, mode='bilinear', align_corners=False))
        views = self.view_logits(views)
        if global_view:
            whole, whole_covered, prior = views.pop()
        counts = inputs.new_zeros((1, 1, height, width))
        for y1, x1, y2, x2 in boxes:
            counts[:, :, y1:y2, x1:x2] += 1
        top_k = self.test_cfg.get('prior_top_k')
        score = score or (lambda x: x)
        num_classes = views[0][0].shape[1]
        dtype = views[0][0].dtype
        # a GPU has the memory for every class at once, and each chunk costs it a dozen kernel launches
        chunk = self.CLASS_CHUNK if inputs.device.type == 'cpu' else num_classes
        # channels-last like the chunk buffer, so each chunk's last pass writes at matching strides, with no
        # copy into an NCHW output (faster: docs/benchmarks/design.csv)
        out = torch.empty((batch, num_classes, height, width), dtype=dtype, device=inputs.device,
                          memory_format=torch.channels_last)
        if top_k is None or top_k >= num_classes:  # (images, classes, number of classes) per pass
            parts = [(slice(None), slice(start, start + chunk), min(chunk, num_classes - start))
                     for start in range(0, num_classes, chunk)]
        else:  # the dropped classes keep score 0, below any sigmoid score
            out.zero_()
            kept = prior.topk(top_k, dim=1).indices.sort(dim=1).values  # (B, k)
            parts = [(slice(b, b + 1), kept[b, start:start + chunk], min(chunk, top_k - start))
                     for b in range(batch) for start in range(0, top_k, chunk)]
        buffer = torch.empty((batch, min(chunk, num_classes), height, width), dtype=dtype,
                             device=inputs.device, memory_format=torch.channels_last)
        # halving commutes with float rounding, so dividing by 2 * counts and adding half the global scores is
        # bit-identical to (window mean + global) / 2, one pass shorter
        divisor = counts * 2 if global_view else counts
        for images, classes, count in parts:
            total = buffer[images, :count].zero_()
            for (y1, x1, y2, x2), (logits, covered, _) in zip(boxes, views):
                total[:, :, y1:y2, x1:x2] += score(self.logits_to_view(logits[images, classes], covered,
                                                                       (y2 - y1, x2 - x1)))
            # the last pass writes straight into the output where the chunk is a view of it; top-k classes are an
            # index (out[images, classes] would be a copy) and out= ops record no gradients, so there it makes a
            # new tensor that is copied in
            direct = isinstance(classes, slice) and not total.requires_grad
            dest = out[images, classes] if direct else None
            if global_view:
                total /= divisor
                whole_scores = score(self.logits_to_view(whole[images, classes], whole_covered, crop))
                result = torch.add(total, resize_class_maps(whole_scores, (height, width)), alpha=0.5, out=dest)
            else:
                result = torch.div(total, divisor, out=dest)
            if not direct:
                out[images, classes] = result
        return out

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
