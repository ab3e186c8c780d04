"""The ``logoseg`` command. ``logoseg segment``: label maps, overlays and JSON records for your own images;
``logoseg demo``: the same in a local web page.

Exit status: 0 when every image was segmented, 1 when some failed (each reported on one line, the others
written), 2 when the run was refused before any image was read (bad arguments, vocabulary, checkpoint).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

from .utils.errors import LoGoSegUserError
from .utils.vocab import VOCABULARIES

USAGE_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='logoseg', description='LoGoSeg open-vocabulary segmentation.')
    commands = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    seg = commands.add_parser(
        'segment', help='segment images with any vocabulary',
        description='Segment images with a vocabulary of your choice. Per image IMG it writes OUT/labels/IMG.png '
                    '(class indices, 16-bit above 255 classes), OUT/overlays/IMG.png (colours and a legend) and '
                    'OUT/json/IMG.json (classes present, pixel fractions, object prior, model).')
    seg.add_argument('images', nargs='+', type=Path, metavar='IMAGE_OR_DIR',
                     help='image files, or folders searched recursively for .jpg/.png/.bmp/.tif/.webp images')
    vocab = seg.add_mutually_exclusive_group(required=True)
    vocab.add_argument('--vocab', help='comma-separated class names, e.g. "cat, dog, grass"')
    vocab.add_argument('--vocab-file', type=Path, help='class names, one per line (or a JSON list)')
    vocab.add_argument('--vocab-set', choices=VOCABULARIES, help='a shipped benchmark vocabulary')
    seg.add_argument('--config', required=True, type=Path, help='the MMSeg config the checkpoint was trained with')
    seg.add_argument('--checkpoint', required=True, type=Path, help='the trained LoGoSeg .pth file')
    seg.add_argument('--out', required=True, type=Path, help='output folder')
    seg.add_argument('--device', default='cpu', help='cpu, cuda or cuda:<index> (default: cpu)')
    seg.add_argument('--mode', choices=('whole', 'slide', 'slide_global'),
                     help="inference mode (default: the config's); slide modes cover large images in windows")
    seg.add_argument('--legend-entries', type=_positive_int, default=12, metavar='N',
                     help='overlay legend lines at most: the largest classes, the rest as "+ K more" (default: 12)')
    seg.add_argument('--side-by-side', action='store_true',
                     help='overlays show the image left of the coloured one (default: the coloured image only)')
    seg.add_argument('--cache-dir', type=Path,
                     help='text-embedding cache folder (default: $LOGOSEG_CACHE_DIR or ~/.cache/logoseg)')
    seg.set_defaults(run=segment_command)

    demo = commands.add_parser(
        'demo', help='a local web page to segment uploaded images',
        description='Start a web page (Gradio) where you upload an image, type a vocabulary or pick a shipped one, '
                    'and get the overlay, the classes present and the label map and JSON to download. It listens '
                    'on 127.0.0.1 (this machine only) unless --host says otherwise; requests run one at a time.')
    demo.add_argument('--config', required=True, type=Path, help='the MMSeg config the checkpoint was trained with')
    demo.add_argument('--checkpoint', required=True, type=Path, help='the trained LoGoSeg .pth file')
    demo.add_argument('--device', default='cpu', help='cpu, cuda or cuda:<index> (default: cpu)')
    demo.add_argument('--mode', choices=('whole', 'slide', 'slide_global'),
                      help="inference mode (default: the config's)")
    demo.add_argument('--host', default='127.0.0.1',
                      help='address to listen on (default: 127.0.0.1; 0.0.0.0 serves every network the machine is on)')
    demo.add_argument('--port', type=int, default=7860, help='port (default: 7860)')
    demo.add_argument('--legend-entries', type=_positive_int, default=12, metavar='N',
                      help='overlay legend lines at most (default: 12)')
    demo.add_argument('--cache-dir', type=Path,
                      help='text-embedding cache folder (default: $LOGOSEG_CACHE_DIR or ~/.cache/logoseg)')
    demo.set_defaults(run=demo_command)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f'{text!r} is not a positive whole number')
    return value


def parse_vocabulary(args: argparse.Namespace) -> tuple[str, ...]:
    """The vocabulary of ``--vocab``, ``--vocab-file`` or ``--vocab-set``, validated."""
    from .utils.vocab import check_vocabulary
    if args.vocab_set:
        return check_vocabulary(args.vocab_set)
    if args.vocab is not None:
        text = args.vocab.strip()
        return check_vocabulary([name.strip() for name in text.split(',')] if text else [])
    try:
        text = args.vocab_file.read_text(encoding='utf-8')
    except (OSError, UnicodeDecodeError) as err:
        raise LoGoSegUserError(f'cannot read --vocab-file {args.vocab_file}: {err}') from None
    if args.vocab_file.suffix == '.json':
        try:
            names = json.loads(text)
        except json.JSONDecodeError as err:
            raise LoGoSegUserError(f'--vocab-file {args.vocab_file} is not valid JSON ({err})') from None
        if not isinstance(names, list):
            raise LoGoSegUserError(f'--vocab-file {args.vocab_file} must hold a JSON list of class names')
        return check_vocabulary(names)
    return check_vocabulary([line.strip() for line in text.splitlines() if line.strip()])


def collect_images(inputs: Sequence[Path], out_dir: Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(image, path relative to its input) pairs in command-line order, folders walked in sorted order,
    and one problem line per input that names no image."""
    from .apis import IMAGE_EXTENSIONS
    found, problems = [], []
    out_dir = out_dir.resolve()
    for given in inputs:
        if given.is_dir():
            images = sorted(p for p in given.rglob('*') if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                            and not any(part.startswith('.') for part in p.relative_to(given).parts)
                            and out_dir not in p.resolve().parents)
            if not images:
                problems.append(f'{given}: no {"/".join(IMAGE_EXTENSIONS)} images in this folder')
            found += [(p, p.relative_to(given)) for p in images]
        elif given.is_file():
            found.append((given, Path(given.name)))
        else:
            problems.append(f'{given}: no such file or folder')
    return found, problems


def _check_output_names(images: list[tuple[Path, Path]]) -> None:
    seen: dict[Path, Path] = {}
    for path, relative in images:
        stem = relative.with_suffix('')
        if stem in seen:
            raise LoGoSegUserError(f'{seen[stem]} and {path} would write the same outputs ({stem}.*); rename one '
                                   'or segment them into different --out folders')
        seen[stem] = path


def segment_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .apis import LoGoSegPredictor
    from .apis.outputs import write_result

    vocabulary = parse_vocabulary(args)
    images, problems = collect_images(args.images, args.out)
    for line in problems:
        print(f'logoseg: error: {line}', file=sys.stderr)
    if not images:
        raise LoGoSegUserError('no images to segment')
    _check_output_names(images)
    predictor = LoGoSegPredictor(args.config, args.checkpoint, device=args.device, mode=args.mode,
                                 cache_dir=args.cache_dir)
    start, done, failed = time.perf_counter(), 0, len(problems)
    with tqdm(total=len(images), unit='img', desc='segment', file=sys.stderr, dynamic_ncols=True) as bar:
        for path, relative in images:
            try:
                result = predictor.segment(path, vocabulary)
                write_result(result, str(path), args.out, relative, predictor, max_legend=args.legend_entries,
                             side_by_side=args.side_by_side)
                done += 1
            except LoGoSegUserError as err:
                bar.write(f'logoseg: error: {err}', file=sys.stderr)
                failed += 1
            except OSError as err:  # writing the outputs: disk full, permissions
                bar.write(f'logoseg: error: {path}: outputs not written ({err})', file=sys.stderr)
                failed += 1
            except Exception as err:  # noqa: BLE001  one image the model or the drawing cannot handle
                # costs that image, never the run: the line names it and the error, the others are written
                bar.write(f'logoseg: error: {path}: not segmented ({type(err).__name__}: {_first_line(err)}); '
                          'the other images go on', file=sys.stderr)
                failed += 1
            bar.update()
    seconds = time.perf_counter() - start
    print(f'logoseg segment: {done} done, {failed} failed in {seconds:.1f} s '
          f'({seconds / max(len(images), 1):.2f} s/image); outputs in {args.out}', file=sys.stderr)
    return 1 if failed else 0


def demo_command(args: argparse.Namespace) -> int:
    try:
        from .apis.demo import build_demo
    except ImportError as err:
        raise LoGoSegUserError(f'logoseg demo needs Gradio ({err}); install it with pip install -c constraints.txt '
                               '-e .') from None
    from .apis import LoGoSegPredictor

    predictor = LoGoSegPredictor(args.config, args.checkpoint, device=args.device, mode=args.mode,
                                 cache_dir=args.cache_dir)
    app = build_demo(predictor, max_legend=args.legend_entries)
    print(f'logoseg demo: http://{args.host}:{args.port} (Ctrl-C stops it)', file=sys.stderr)
    app.launch(server_name=args.host, server_port=args.port, show_error=True, quiet=True)
    return 0


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else 'no message'


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``logoseg`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        from . import register
        register()  # deferred by the console script until the arguments are known to be runnable
        return args.run(args)
    except LoGoSegUserError as err:
        print(f'logoseg: error: {err}', file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print('logoseg: interrupted; the image in progress left no output', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
