"""What ``logoseg segment`` writes per image: a label-map PNG, an overlay PNG and a JSON record.

The three files of an image are written to temporary names and renamed only once all are complete, so an
image that fails, or an interrupted run, leaves no file that looks finished.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from .. import __version__
from ..utils.files import temporary_beside
from .predictor import LoGoSegPredictor, Segmentation
from .visualize import draw_overlay

OUTPUT_FOLDERS = dict(labels='labels', overlay='overlays', record='json')


def output_paths(out_dir: Path, relative: Path) -> dict[str, Path]:
    """``labels/<rel>.png``, ``overlays/<rel>.png``, ``json/<rel>.json`` under ``out_dir`` (rel without suffix):
    the label maps form an annotation folder whose names match the images'."""
    stem = relative.with_suffix('')
    return dict(labels=out_dir / OUTPUT_FOLDERS['labels'] / f'{stem}.png',
                overlay=out_dir / OUTPUT_FOLDERS['overlay'] / f'{stem}.png',
                record=out_dir / OUTPUT_FOLDERS['record'] / f'{stem}.json')


def encode_label_map(label_map: np.ndarray, num_classes: int) -> bytes:
    """PNG of class indices: 8-bit up to 255 classes (255 stays free for 'ignore'), 16-bit above."""
    dtype = np.uint8 if num_classes <= 255 else np.uint16
    return _png(label_map.astype(dtype))


def _png(array: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode('.png', array)
    if not ok:
        raise OSError(f'PNG encoding failed for an array of shape {array.shape}')
    return encoded.tobytes()


def build_record(result: Segmentation, image: str, paths: dict[str, Path], out_dir: Path,
                 predictor: LoGoSegPredictor) -> dict:
    """The JSON record of one image: vocabulary, classes present, object prior, size, model, checkpoint.
    Output files are named relative to ``out_dir``."""
    fractions = result.class_fractions()
    height, width = result.label_map.shape
    return dict(
        image=image,
        image_size=dict(height=height, width=width),
        vocabulary=list(result.vocabulary),
        classes_present=[dict(index=index, name=name, pixel_fraction=fractions[name],
                              colour=list(result.palette[index]))
                         for index, name in enumerate(result.vocabulary) if name in fractions],
        object_prior={name: float(p) for name, p in zip(result.vocabulary, result.object_prior)},
        label_map=dict(file=paths['labels'].relative_to(out_dir).as_posix(),
                       dtype='uint8' if len(result.vocabulary) <= 255 else 'uint16'),
        overlay=paths['overlay'].relative_to(out_dir).as_posix(),
        model=dict(config=str(predictor.config_path), clip=predictor.model.text_encoder.model_name,
                   mode=predictor.mode, checkpoint=str(predictor.checkpoint_path),
                   checkpoint_sha256=predictor.checkpoint_sha256),
        logoseg_version=__version__,
    )


def write_result(result: Segmentation, image: str, out_dir: Path, relative: Path, predictor: LoGoSegPredictor,
                 **overlay_options) -> dict[str, Path]:
    """Encode the three outputs of the image at ``relative`` in memory, then write them all or none.
    ``overlay_options``: :func:`draw_overlay`'s ``max_legend`` and ``side_by_side``."""
    paths = output_paths(out_dir, relative)
    overlay = draw_overlay(result.image, result.label_map, result.vocabulary, result.palette, **overlay_options)
    files = {
        paths['labels']: encode_label_map(result.label_map, len(result.vocabulary)),
        paths['overlay']: _png(np.ascontiguousarray(overlay[..., ::-1])),  # OpenCV encodes BGR
        paths['record']: (json.dumps(build_record(result, image, paths, out_dir, predictor), indent=2) + '\n').encode(),
    }
    write_all_or_none(files)
    return paths


def write_all_or_none(files: dict[Path, bytes]) -> None:
    """Write every file to a temporary name beside it, then rename them in order; on any failure or
    interrupt, remove the temporaries and the files this call already renamed."""
    temporaries: dict[Path, Path] = {}
    renamed: list[Path] = []
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            temporaries[path] = temporary_beside(path)
            with open(temporaries[path], 'xb') as handle:
                handle.write(data)
        for path, tmp in temporaries.items():
            os.replace(tmp, path)
            renamed.append(path)
    except BaseException:
        for tmp in temporaries.values():
            tmp.unlink(missing_ok=True)
        for path in renamed:
            path.unlink(missing_ok=True)
        raise
