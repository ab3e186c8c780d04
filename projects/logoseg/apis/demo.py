"""``logoseg demo``: a local web page (Gradio) to segment an uploaded image with any vocabulary.

The page takes an image and a typed vocabulary or a shipped one, and returns the overlay, the classes present
with their share of the pixels, and the label PNG and JSON record that ``logoseg segment`` writes. The same
function is Gradio's API endpoint ``/segment``. Requests are queued and run one at a time: the model holds the
machine's cores (and memory) for the length of one image.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import gradio as gr

from ..utils.errors import LoGoSegUserError
from ..utils.vocab import VOCABULARIES, check_vocabulary
from .outputs import build_record, encode_label_map, output_paths
from .predictor import LoGoSegPredictor
from .visualize import MAX_LEGEND_ENTRIES, draw_overlay

TYPED = 'typed below'
EXAMPLE_VOCABULARY = 'wall, floor, sky, tree, person'


def vocabulary_of(typed: str, shipped: str) -> tuple[str, ...]:
    """The vocabulary of the page: a shipped set if one is picked, else the typed comma-separated names."""
    if shipped and shipped != TYPED:
        return check_vocabulary(shipped)
    text = (typed or '').strip()
    if not text:
        raise LoGoSegUserError('empty vocabulary: type class names separated by commas (e.g. '
                               f'"{EXAMPLE_VOCABULARY}") or pick a shipped vocabulary')
    return check_vocabulary([name.strip() for name in text.split(',')])


def build_demo(predictor: LoGoSegPredictor, max_legend: int = MAX_LEGEND_ENTRIES) -> gr.Blocks:
    """The page, bound to one loaded model; ``launch()`` it (it is queued, one request at a time)."""

    def segment(image_path: str | None, typed: str, shipped: str, side_by_side: bool):
        if not image_path:
            raise gr.Error('no image: upload one first')
        try:
            vocabulary = vocabulary_of(typed, shipped)
            result = predictor.segment(image_path, vocabulary)
        except LoGoSegUserError as err:
            raise gr.Error(str(err)) from None
        except Exception as err:  # noqa: BLE001  the page shows it; the server keeps serving
            raise gr.Error(f'segmentation failed ({type(err).__name__}: {err})') from None
        overlay = draw_overlay(result.image, result.label_map, result.vocabulary, result.palette,
                               max_legend=max_legend, side_by_side=side_by_side)
        # files that Gradio serves for download live in the system's temp folder (its allowed location)
        out_dir = Path(tempfile.mkdtemp(prefix='logoseg-demo-'))
        name = Path(image_path).stem
        paths = output_paths(out_dir, Path(name))
        paths['labels'].parent.mkdir(parents=True)
        paths['labels'].write_bytes(encode_label_map(result.label_map, len(result.vocabulary)))
        record = build_record(result, Path(image_path).name, paths, out_dir, predictor)
        record.pop('overlay')  # the page shows it; it is not one of the downloads
        paths['record'].parent.mkdir(parents=True)
        paths['record'].write_text(json.dumps(record, indent=2) + '\n')
        fractions = {entry['name']: entry['pixel_fraction'] for entry in record['classes_present']}
        return overlay, fractions, [str(paths['labels']), str(paths['record'])]

    with gr.Blocks(title='LoGoSeg', analytics_enabled=False) as demo:
        gr.Markdown('## LoGoSeg: segment an image with any vocabulary\n'
                    f'Model: `{predictor.config_path or "config"}`, checkpoint `{predictor.checkpoint_path.name}`, '
                    f'mode `{predictor.mode}`, device `{predictor.device}`.')
        with gr.Row():
            with gr.Column():
                image = gr.Image(type='filepath', label='Image', sources=['upload', 'clipboard'])
                typed = gr.Textbox(label='Vocabulary (class names, comma-separated)', value=EXAMPLE_VOCABULARY,
                                   elem_id='vocabulary')
                shipped = gr.Dropdown([TYPED, *VOCABULARIES], value=TYPED, label='or a shipped vocabulary')
                side_by_side = gr.Checkbox(label='image and overlay side by side')
                button = gr.Button('Segment', variant='primary', elem_id='segment')
            with gr.Column():
                overlay = gr.Image(label='Overlay', type='numpy', format='png', elem_id='overlay')
                legend = gr.Label(label='Classes present (share of the pixels)', num_top_classes=max_legend,
                                  elem_id='legend')
                downloads = gr.File(label='Label map (PNG, class indices) and JSON record', file_count='multiple',
                                    elem_id='downloads')
        button.click(segment, [image, typed, shipped, side_by_side], [overlay, legend, downloads],
                     api_name='segment', concurrency_limit=1)
    return demo.queue(default_concurrency_limit=1)
