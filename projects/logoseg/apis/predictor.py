"""Segment any image with any words: a LoGoSeg model built once from a config and a trained checkpoint."""
from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.runner import CheckpointLoader

from ..models.segmentor import INFERENCE_MODES
from ..utils.errors import LoGoSegUserError
from ..utils.files import file_sha256
from ..utils.palette import distinct_present_colours
from ..utils.vocab import check_vocabulary
from .model import build_model
from .images import ImageInput, read_image
from .label_map import resize_scores, upsampled_argmax

_ANNOTATION_LOADERS = ('LoadAnnotations', 'LoadSegAnnotations')


@dataclass(frozen=True)
class Segmentation:
    """One image segmented with one vocabulary (N classes, image H x W).

    Attributes:
        label_map: (H, W) int64, the index into ``vocabulary`` of each pixel's class.
        scores: (N, H, W) float32 per-class scores in [0, 1], one independent sigmoid per class (the model
            is trained with per-class BCE), so they do not sum to 1 over the classes; in ``slide_global``
            mode the window-and-global-view average of them. None unless
            ``segment(..., scores=True)`` asked for them.
        vocabulary: the N class names, in label order.
        object_prior: (N,) float32 object prior p_n of eq 1 (mean pixel-text cosine, in [-1, 1]); in slide
            modes the mean over the windows (and the global view).
        palette: N RGB colours, each class's own colour (chosen by its name, the same in every run and
            vocabulary), except that classes present in the label map never share a colour.
        image: (H, W, 3) uint8 RGB, the image as segmented (EXIF orientation applied).
    """

    label_map: np.ndarray
    scores: np.ndarray | None
    vocabulary: tuple[str, ...]
    object_prior: np.ndarray
    palette: tuple[tuple[int, int, int], ...]
    image: np.ndarray

    def class_fractions(self) -> dict[str, float]:
        """Fraction of the pixels of each class present in the label map, in vocabulary order."""
        counts = np.bincount(self.label_map.ravel(), minlength=len(self.vocabulary))
        return {name: float(count / self.label_map.size)
                for name, count in zip(self.vocabulary, counts) if count}


class LoGoSegPredictor:
    """A trained LoGoSeg model ready to segment images with any vocabulary.

    The checkpoint must fit the config exactly (it holds the CLIP weights too, so ``model.clip.pretrained``
    is not read); a missing, unreadable or mismatched checkpoint is refused here, before any image.

    Args:
        config: an MMSeg config file (e.g. ``configs/logoseg_vitb.py``) or a loaded ``Config``.
        checkpoint: the ``.pth`` a LoGoSeg training run saved.
        device: ``'cpu'``, ``'cuda'``, ``'cuda:1'``...
        mode: inference mode (``'whole'``, ``'slide'``, ``'slide_global'``); None keeps the config's.
            Slide modes use the config's ``crop_size``/``stride``, else the training crop and 2/3 of it.
        cfg_options: config overrides, as ``--cfg-options`` gives them.
        cache_dir: folder of the text-embedding cache; None is ``$LOGOSEG_CACHE_DIR`` or ``~/.cache/logoseg``.

    Example:
        >>> predictor = LoGoSegPredictor('configs/logoseg_vitb.py', 'logoseg_vitb.pth', device='cuda')
        >>> result = predictor.segment('street.jpg', ['road', 'car', 'tree', 'sky'])
        >>> result.label_map.shape, result.class_fractions()
    """

    def __init__(self, config: str | os.PathLike | Config, checkpoint: str | os.PathLike, device: str = 'cpu',
                 mode: str | None = None, cfg_options: dict | None = None,
                 cache_dir: str | os.PathLike | None = None):
        self.device = _check_device(device)
        self.config_path = None if isinstance(config, Config) else Path(config)
        self.checkpoint_path = Path(checkpoint)
        if self.config_path is not None and not self.config_path.is_file():
            raise LoGoSegUserError(f'config not found at {self.config_path}; pass an MMSeg config such as '
                                   'configs/logoseg_vitb.py')
        if not self.checkpoint_path.is_file():
            raise LoGoSegUserError(f'checkpoint not found at {self.checkpoint_path}; pass the .pth file a LoGoSeg '
                                   'training run saved (work_dirs/<run>/iter_<N>.pth)')
        cfg = copy.deepcopy(config) if isinstance(config, Config) else Config.fromfile(str(config))
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        if cfg.model.get('type') != 'LoGoSeg':
            raise LoGoSegUserError(f'the config builds a {cfg.model.get("type")}, not LoGoSeg')
        cfg.model.clip.pretrained = None  # the checkpoint holds the CLIP weights
        cfg.model.train_cfg = None
        cfg.model.test_cfg = _test_cfg(cfg, mode)
        model = build_model(cfg)  # random CLIP weights: the checkpoint holds them
        meta = _load_fitting_checkpoint(model, self.checkpoint_path, self.config_path or 'the config')
        if meta.get('dataset_meta'):
            model.dataset_meta = meta['dataset_meta']
        if cache_dir is not None:
            model.text_encoder.disk_cache = type(model.text_encoder.disk_cache)(cache_dir)
        model.cfg = cfg
        self.model = model.to(self.device).eval()
        self.cfg = cfg
        self.mode = cfg.model.test_cfg['mode']
        self.pipeline = Compose(_array_pipeline(cfg))

    @cached_property
    def checkpoint_sha256(self) -> str:
        return file_sha256(self.checkpoint_path)

    @torch.no_grad()
    def segment(self, image: ImageInput, vocabulary: str | Sequence[str] | None = None,
                scores: bool = False) -> Segmentation:
        """Segment one image.

        Args:
            image: a file path, a PIL image, or an array (H, W), (H, W, 3) RGB or (H, W, 4) RGBA of uint8 or
                uint16 values.
            vocabulary: class names (label i is ``vocabulary[i]``) or a shipped vocabulary name; None keeps
                the current one (initially the checkpoint's training classes).
            scores: also return every class's score at the image's resolution (``N x H x W`` floats:
                4 GB for 150 classes on a 6 MP photo); by default only the label map is built there, a few
                classes at a time, so memory grows with the pixels, not with classes x pixels.
        """
        rgb = read_image(image)
        names = check_vocabulary(vocabulary) if vocabulary is not None else self.model.vocabulary
        if names != self.model.class_names or self.model.background_index is not None:
            self.model.set_vocabulary(names)
        data = self.pipeline(dict(img=np.ascontiguousarray(rgb[..., ::-1])))  # MMSeg pipelines take BGR
        priors = []
        hook = self.model.decode_head.prior.register_forward_hook(lambda module, args, out: priors.append(out[1]))
        try:
            batch = self.model.data_preprocessor(dict(inputs=[data['inputs']], data_samples=[data['data_samples']]))
            meta = batch['data_samples'][0].metainfo
            logits = self.model.inference(batch['inputs'], [meta])[0]  # (N, h, w) at the protocol's resolution
        finally:
            hook.remove()
        logits = _unpad(logits, meta)
        size = tuple(meta['ori_shape'])
        if len(names) == 1:  # LoGoSeg.postprocess_result: one class means every pixel is it
            label_map = torch.zeros(size, dtype=torch.long)
        else:
            label_map = upsampled_argmax(logits, size, self.model.align_corners)
        full_scores = None
        if scores:
            full_scores = self._scores(resize_scores(logits.float(), size, self.model.align_corners)).cpu().numpy()
        palette = distinct_present_colours(names, np.bincount(label_map.view(-1).cpu().numpy(),
                                                              minlength=len(names)))
        return Segmentation(
            label_map=label_map.cpu().numpy(),
            scores=full_scores,
            vocabulary=names,
            object_prior=torch.cat(priors).mean(dim=0).float().cpu().numpy(),
            palette=palette,
            image=rgb,
        )

    def _scores(self, seg_logits: torch.Tensor) -> torch.Tensor:
        """Per-class sigmoid scores from the protocol's output, which holds logits, except that slide_global
        returns the scores."""
        return seg_logits if self.mode == 'slide_global' else seg_logits.sigmoid()


def _unpad(logits: torch.Tensor, meta: dict) -> torch.Tensor:
    """``logits`` (N, h, w) without the padding the data preprocessor added (as MMSeg's postprocess_result)."""
    left, right, top, bottom = meta.get('img_padding_size', meta.get('padding_size', [0] * 4))
    height, width = logits.shape[-2:]
    logits = logits[:, top:height - bottom, left:width - right]
    if meta.get('flip'):
        logits = logits.flip(dims=(2,) if meta.get('flip_direction') == 'horizontal' else (1,))
    return logits


def _check_device(device: str) -> torch.device:
    try:
        device = torch.device(device)
    except RuntimeError:
        raise LoGoSegUserError(f'unknown device {device!r}; use cpu, cuda or cuda:<index>') from None
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise LoGoSegUserError('CUDA is not available on this machine; use --device cpu')
    if device.type not in ('cpu', 'cuda'):
        raise LoGoSegUserError(f'unsupported device {device}; use cpu, cuda or cuda:<index>')
    return device


def _test_cfg(cfg: Config, mode: str | None) -> dict:
    test_cfg = dict(cfg.model.get('test_cfg') or dict(mode='whole'))
    if mode is None:
        return test_cfg
    if mode not in INFERENCE_MODES:
        raise LoGoSegUserError(f'unknown inference mode {mode!r}; use one of {", ".join(INFERENCE_MODES)}')
    test_cfg['mode'] = mode
    if mode != 'whole':
        crop = test_cfg.get('crop_size') or cfg.model.get('data_preprocessor', {}).get('size')
        if crop is None:
            raise LoGoSegUserError(f'--mode {mode} needs a window size: set model.test_cfg.crop_size in the config')
        test_cfg['crop_size'] = tuple(crop)
        test_cfg.setdefault('stride', tuple(max(1, 2 * side // 3) for side in crop))
    return test_cfg


def _array_pipeline(cfg: Config) -> list[dict]:
    """The config's test pipeline fed with arrays: images come decoded, labels do not exist."""
    steps = [dict(step) for step in cfg.get('test_pipeline') or cfg.test_dataloader.dataset.pipeline]
    steps = [step for step in steps if step['type'] not in _ANNOTATION_LOADERS]
    if steps and steps[0]['type'] == 'LoadImageFromFile':
        steps[0] = dict(type='LoadImageFromNDArray')
    else:
        steps.insert(0, dict(type='LoadImageFromNDArray'))
    return steps


def _load_fitting_checkpoint(model: torch.nn.Module, path: Path, config_name) -> dict:
    """Load ``path`` into ``model`` if every tensor fits, else say in one line what differs. Returns its meta."""
    try:
        checkpoint = CheckpointLoader.load_checkpoint(str(path), map_location='cpu', logger='silent')
    except Exception as err:  # torch.load fails in pickle, zip or storage code on a damaged file
        raise LoGoSegUserError(f'cannot read checkpoint {path} ({type(err).__name__}: {err}); it is damaged or '
                               'not a PyTorch checkpoint') from None
    if not isinstance(checkpoint, dict):
        raise LoGoSegUserError(f'{path} is not a model checkpoint (it holds a {type(checkpoint).__name__})')
    state = checkpoint.get('state_dict', checkpoint)
    state = {re.sub(r'^module\.', '', key): value for key, value in state.items()}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [key for key in expected if key in state and getattr(state[key], 'shape', None) != expected[key].shape]
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f'{len(missing)} weights missing (e.g. {missing[0]})')
        if unexpected:
            problems.append(f'{len(unexpected)} unknown weights (e.g. {unexpected[0]})')
        if mismatched:
            key = mismatched[0]
            problems.append(f'{len(mismatched)} of another shape (e.g. {key}: {tuple(state[key].shape)} in the '
                            f'checkpoint, {tuple(expected[key].shape)} in the model)')
        raise LoGoSegUserError(f'checkpoint {path} does not fit {config_name}: {"; ".join(problems)}; pass the '
                               'config it was trained with')
    model.load_state_dict(state, strict=True)
    return checkpoint.get('meta') or {}
