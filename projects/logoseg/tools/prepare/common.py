"""What every preparation script shares: CLI, raw-input checks, label lookup tables, atomic and idempotent output.

A script builds a :class:`Plan` (one picklable task per image, the raw files it reads, the settings that shape
its output) and hands it to :func:`execute`, which

- skips the run when ``<out>/.prepare.json`` records the same digest (input list with each file's size and
  modification time, settings, script source) and the output still holds every file, so a re-run rewrites
  nothing;
- otherwise converts every task into a temporary sibling ``.<out name>.tmp-<pid>`` (a process pool when
  ``workers > 1``) and moves it to ``<out>`` only when all tasks succeeded: an interrupted run never leaves an
  output that DVC or a later run would take as complete. Temporaries of dead runs are removed by the next run.

Every raw file is fully decoded where it is read; a corrupt or truncated one stops the run with one line naming
it and what to re-download (:func:`read_failed`), in a worker process as in the main one. A plan with a
``finish`` step gets every task's result instead (:mod:`.declared` collects problems rather than stopping at
the first) and may still discard the whole output.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import tifffile
import yaml
from PIL import Image, ImageFile, UnidentifiedImageError
from tqdm import tqdm

from logoseg.utils.errors import LoGoSegUserError
from logoseg.utils.files import process_alive

MARKER = '.prepare.json'
INVALID = -1  # lookup-table entry for raw values the raw format does not define: an error, not a class


@dataclass(frozen=True)
class LabelSpec:
    """The prepared label format: dtype, number of classes (values 0..num_classes-1) and the ignore value."""

    dtype: type
    num_classes: int
    ignore: int


@dataclass(frozen=True)
class Plan:
    """One preparation run.

    Args:
        name: dataset name (progress bar, marker).
        raw: raw dataset root; input paths are recorded relative to it.
        out: final output directory.
        tasks: one picklable item per image, handed to ``convert(task, root=<directory to write into>)``.
        convert: module-level function writing the outputs of one task below ``root``.
        inputs: every raw file the run reads.
        settings: JSON-serialisable values that shape the output (parameters, id lists).
        sources: files whose content shapes the output (the scripts, vocabulary files): the "script version".
        content_hash: also record ``content_sha256`` (:func:`content_digest` of the output) in the marker,
            a version of the data itself (generated data, whose inputs are code).
        finish: ``finish(root, results)`` with each task's ``convert`` return value, in task order, once every
            task has run and before the marker is written: writes summary files (a manifest) below ``root``,
            or raises to discard the whole output (an earlier complete output stays as it was).
    """

    name: str
    raw: Path
    out: Path
    tasks: Sequence[Any]
    convert: Callable[..., None]
    inputs: Sequence[Path]
    settings: dict
    sources: Sequence[Any]
    content_hash: bool = False
    finish: Callable[[Path, list], None] | None = None


# ---------------------------------------------------------------- command line

def load_params(section: str, path: Path = Path('params.yaml')) -> dict:
    """``prepare.workers`` and ``prepare.<section>`` of ``params.yaml`` in the working directory (DVC runs
    stages from the repository root); empty when there is no such file."""
    if not path.is_file():
        return {}
    prepare = (yaml.safe_load(path.read_text(encoding='utf-8')) or {}).get('prepare') or {}
    params = dict(prepare.get(section) or {})
    if 'workers' in prepare:
        params['workers'] = prepare['workers']
    return params


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be >= 1, got {value}')
    return value


def make_parser(name: str, doc: str, params: dict) -> argparse.ArgumentParser:
    """The options every script takes: --raw, --out, --workers (default: prepare.workers of params.yaml)."""
    parser = argparse.ArgumentParser(prog=f'python -m logoseg.tools.prepare.{name}',
                                     description=doc.strip().splitlines()[0])
    parser.add_argument('--raw', type=Path, required=True, help='raw dataset directory (as downloaded)')
    parser.add_argument('--out', type=Path, required=True, help=f'output directory, e.g. prepared/{name}')
    parser.add_argument('--workers', type=positive_int, default=params.get('workers', 1),
                        help='worker processes (default: prepare.workers of ./params.yaml, else 1)')
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
               choices: dict[str, Sequence[Any]] | None = None) -> argparse.Namespace:
    """Parse, then validate values that may come from params.yaml (argparse checks only typed-in values)."""
    args = parser.parse_args(argv)
    if not isinstance(args.workers, int) or args.workers < 1:
        parser.error(f'--workers must be an integer >= 1, got {args.workers!r}')
    for key, allowed in (choices or {}).items():
        values = getattr(args, key)
        if not values or any(v not in allowed for v in values):
            parser.error(f'--{key} must be one or more of {", ".join(map(str, allowed))}, got {values!r}')
    return args


def run_main(job: Callable[[], Any]) -> int:
    """Run a script body: a :class:`LoGoSegUserError` becomes ``error: <message>`` on stderr and exit code 2,
    after one ``error: <line>`` for each of its ``details`` (the first problems a data check found)."""
    try:
        job()
    except LoGoSegUserError as err:
        for line in getattr(err, 'details', ()):
            print(f'error: {line}', file=sys.stderr)
        print(f'error: {err}', file=sys.stderr)
        return 2
    return 0


# ---------------------------------------------------------------- raw inputs

def not_found(path: Path, what: str, source: str, detail: str = 'is missing') -> LoGoSegUserError:
    """The one-line error for a missing raw input: its official download, and ``dvc pull`` when a DVC record
    (``data.dvc`` beside ``data/``) covers it. When the whole recorded folder is absent (a fresh clone), pulling
    it comes first."""
    record = next((a.with_name(f'{a.name}.dvc') for a in (path, *path.parents)
                   if a.name and a.with_name(f'{a.name}.dvc').is_file()), None)
    if record is None:
        return LoGoSegUserError(f'{what} not found: {path} {detail}; get it from {source}')
    tracked = record.with_suffix('')
    if not tracked.exists():
        return LoGoSegUserError(f'{what} not found: {tracked}/ is missing (a fresh clone?); restore the recorded '
                                f'raw data with `dvc pull {record}` (a DVC remote is needed: docs/datasets.md), '
                                f'or get it from {source}')
    return LoGoSegUserError(f'{what} not found: {path} {detail}; get it from {source} (or `dvc pull {record}` '
                            'if the recorded raw data holds it)')


def read_failed(path: Any, err: BaseException, fix: str = 're-download it') -> LoGoSegUserError:
    """The one-line error for a raw file its parser rejects (truncated, garbage, wrong format)."""
    if isinstance(err, UnidentifiedImageError):
        reason = 'not an image PIL can identify'
    else:  # the parser's first words, without the path it may repeat
        reason = str(err).replace(str(path), 'file').splitlines()[0][:120] if str(err) else type(err).__name__
    return LoGoSegUserError(f'{path} is corrupt or truncated ({reason}); {fix}')


def require(path: Path, what: str, source: str) -> Path:
    """``path`` if it exists, else a one-line error naming it and the official download."""
    if not path.exists():
        raise not_found(path, what, source)
    return path


def list_files(directory: Path, suffix: str, what: str, source: str) -> list[Path]:
    """The ``*<suffix>`` files of a required, non-empty directory, sorted by name."""
    require(directory, what, source)
    files = sorted(p for p in directory.iterdir() if p.name.endswith(suffix) and p.is_file())
    if not files:
        raise not_found(directory, what, source, f'holds no *{suffix} files')
    return files


def check_files(paths: Iterable[Path], what: str, source: str) -> None:
    """Every path must be an existing file; names the first missing one (listing each directory once)."""
    listed: dict[Path, set[str]] = {}
    for path in paths:
        names = listed.get(path.parent)
        if names is None:
            names = listed[path.parent] = set(os.listdir(path.parent)) if path.parent.is_dir() else set()
        if path.name not in names:
            raise not_found(path, what, source)


@contextlib.contextmanager
def strict_decoding() -> Iterator[None]:
    """PIL's tolerance for truncated files off inside the block: a truncated file raises instead of decoding
    as a partly grey image (``LOAD_TRUNCATED_IMAGES`` is a process-wide switch other libraries may turn on)."""
    tolerant, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = tolerant


def decode(path: Path, modes: Sequence[str] | None = None, fix: str = 're-download it') -> np.ndarray:
    """Every pixel of an image file, decoded: (H, W) or (H, W, C) in PIL's mode for it.

    A truncated or garbage file is an error naming it, never a partly grey image (:func:`strict_decoding`).
    ``modes``: the PIL modes accepted (label maps must be single-channel).
    """
    try:
        with strict_decoding(), Image.open(path) as image:
            if modes is not None and image.mode not in modes:
                raise LoGoSegUserError(f'{path} is a {image.mode} image, not one of {"/".join(modes)}; {fix}')
            return np.asarray(image)
    except LoGoSegUserError:
        raise
    except Exception as err:  # noqa: BLE001  PIL's decoders raise OSError, SyntaxError, ValueError, zlib.error ...
        raise read_failed(path, err, fix) from None


def read_label(path: Path, fix: str = 're-download it') -> np.ndarray:
    """(H, W) integer map of a single-channel PNG (greyscale, or palette indices rather than colours)."""
    return decode(path, ('L', 'P', 'I;16', 'I'), fix)


def check_image(path: Path, shape: tuple[int, ...], label: Any, fix: str = 're-download it') -> None:
    """The image a label map belongs to decodes completely and has the label's (H, W)."""
    height, width = decode(path, fix=fix).shape[:2]
    if (height, width) != tuple(shape):
        raise LoGoSegUserError(f'{label} is {shape[1]}x{shape[0]} but its image {path} is {width}x{height}; {fix}')


def remap(raw: np.ndarray, lut: np.ndarray, spec: LabelSpec, path: Any) -> np.ndarray:
    """``lut[raw]`` cast to ``spec.dtype``: vectorised and exact.

    Raw values outside the table or marked :data:`INVALID` are an error naming the file (a corrupt or wrong
    download). The mapped values are checked to be class indices or the ignore value.
    """
    if raw.size and (raw.min() < 0 or raw.max() >= len(lut)):
        bad = np.unique(raw[(raw < 0) | (raw >= len(lut))])
        raise LoGoSegUserError(f'{path}: unexpected label values {bad[:8].tolist()}; re-download it')
    mapped = lut[raw]
    invalid = mapped == INVALID
    if invalid.any():
        raise LoGoSegUserError(f'{path}: unexpected label values {np.unique(raw[invalid])[:8].tolist()}; '
                               're-download it')
    check_label(mapped, spec)
    return mapped.astype(spec.dtype)


def check_label(label: np.ndarray, spec: LabelSpec) -> None:
    """Every value is a class index (0..num_classes-1) or the ignore value, and fits the output dtype."""
    valid = ((label >= 0) & (label < spec.num_classes)) | (label == spec.ignore)
    if not valid.all() or np.iinfo(spec.dtype).max < spec.ignore:
        raise ValueError(f'label values {np.unique(label[~valid])[:8].tolist()} are neither classes '
                         f'0..{spec.num_classes - 1} nor ignore {spec.ignore}')


def write_png(path: Path, label: np.ndarray) -> None:
    """uint8 or uint16 (H, W) label map as an 8- or 16-bit greyscale PNG."""
    assert label.dtype in (np.uint8, np.uint16) and label.ndim == 2
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(label).save(path)  # 2-D uint8 -> mode 'L', uint16 -> 'I;16'


def write_tiff(path: Path, label: np.ndarray) -> None:
    """uint16 (H, W) label map as a deflate-compressed TIFF (PIL, OpenCV and tifffile read it back exactly)."""
    assert label.dtype == np.uint16 and label.ndim == 2
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, label, compression='zlib')


def convert_png(task: tuple[str, str, str], root: Path, lut: np.ndarray, spec: LabelSpec,
                fixes: tuple[str, str]) -> None:
    """Remap one raw label PNG through ``lut`` into a PNG below ``root`` after decoding its image;
    task = (raw label path, raw image path, output path); fixes = what to re-download for a bad label, image."""
    src, image, dst = task
    label = remap(read_label(Path(src), fixes[0]), lut, spec, src)
    check_image(Path(image), label.shape, src, fixes[1])
    write_png(root / dst, label)


def split_folders_plan(name: str, raw: Path, out: Path, splits: Sequence[str], what: str, source: str,
                       lut: np.ndarray, spec: LabelSpec, script: Path, fixes: tuple[str, str]) -> Plan:
    """Plan for a raw layout ``annotations/<split>/<id>.png`` beside ``images/<split>/<id>.jpg``, remapped
    through ``lut`` to ``<out>/<split>/<id>.png``; ``fixes``: what to re-download for a bad label, image."""
    tasks, inputs = [], []
    for split in splits:
        labels = list_files(raw / 'annotations' / split, '.png', f'{what} {split} annotations', source)
        images = [raw / 'images' / split / f'{p.stem}.jpg' for p in labels]
        check_files(images, f'{what} {split} image', source)
        tasks += [(str(p), str(i), f'{split}/{p.name}') for p, i in zip(labels, images, strict=True)]
        inputs += [*labels, *images]
    return Plan(name, raw, out, tasks, partial(convert_png, lut=lut, spec=spec, fixes=fixes), inputs,
                {'splits': list(splits)}, [script])


# ---------------------------------------------------------------- running a plan

def digest(plan: Plan) -> str:
    """sha256 of the input list (paths relative to the raw root, sizes, modification times in ns), the settings
    and the sources.

    A raw file is keyed on size and mtime, as DVC's own state cache and rsync key files: a replaced file (a new
    download, unzip, copy) gets a new mtime even at the same size, and hashing the contents would read every
    raw file (about 20 GB for COCO-Stuff) on each run just to find nothing to do.
    """
    h = hashlib.sha256()
    sources = [hashlib.sha256(s.read_bytes()).hexdigest() for s in (*plan.sources, Path(__file__))]
    inputs = []
    for path in plan.inputs:
        stat = os.stat(path)
        inputs.append([os.path.relpath(path, plan.raw), stat.st_size, stat.st_mtime_ns])
    h.update(json.dumps({'dataset': plan.name, 'settings': plan.settings, 'sources': sources,
                         'inputs': inputs}, sort_keys=True).encode())
    return h.hexdigest()


def content_digest(root: Path, skip: Sequence[str] = ()) -> str:
    """sha256 over the relative path and bytes of every file below ``root`` except the marker, in path order;
    ``skip``: more files to leave out, relative to ``root`` (a manifest that records this digest)."""
    h = hashlib.sha256()
    files = sorted(p for p in root.rglob('*')
                   if p.is_file() and p.name != MARKER and p.relative_to(root).as_posix() not in skip)
    for path in files:
        h.update(path.relative_to(root).as_posix().encode() + b'\0')
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _count_files(root: Path) -> int:
    return sum(len([f for f in files if f != MARKER]) for _, _, files in os.walk(root))


def is_complete(out: Path, expected: str) -> bool:
    """``out`` holds a finished run with this digest and all the files that run wrote."""
    try:
        marker = json.loads((out / MARKER).read_text(encoding='utf-8'))
    except (OSError, ValueError):
        return False
    return marker.get('digest') == expected and marker.get('files') == _count_files(out)


def _remove_stale(out: Path) -> None:
    """Delete temporaries of earlier runs of this output whose process is gone (crashed or killed)."""
    if not out.parent.is_dir():
        return
    for path in out.parent.glob(f'.{out.name}.*-*'):
        kind, _, pid = path.name[len(out.name) + 2:].partition('-')
        if kind in ('tmp', 'old') and pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _map(fn: Callable[[Any], Any], tasks: Sequence[Any], workers: int, desc: str) -> list:
    """``[fn(task) for task in tasks]``, in a process pool when ``workers > 1``."""
    results = []
    # disable=None: a progress bar on a terminal only, so a log or a pipe holds just the outcome
    with tqdm(total=len(tasks), desc=desc, unit='img', file=sys.stderr, disable=None) as bar:
        if workers <= 1 or len(tasks) <= 1:
            for task in tasks:
                results.append(fn(task))
                bar.update()
            return results
        # fork: workers inherit the imported modules instead of importing torch & co. again. A forked child
        # must not inherit a started OpenCV thread pool (it deadlocks there), so OpenCV runs single-threaded
        # while the workers exist: one image per process anyway. concurrent.futures rather than
        # multiprocessing.Pool: a worker that dies (killed, or crashed in a C decoder) breaks the pool with an
        # error instead of leaving the run waiting forever; a task's exception stops the run and cancels the rest.
        ctx = mp.get_context('fork' if 'fork' in mp.get_all_start_methods() else None)
        chunk = max(1, min(64, len(tasks) // (workers * 8)))
        threads = cv2.getNumThreads()
        cv2.setNumThreads(0)
        pool = ProcessPoolExecutor(workers, mp_context=ctx)
        try:
            for result in pool.map(fn, tasks, chunksize=chunk):  # in task order
                results.append(result)
                bar.update()
        except BrokenProcessPool:
            raise LoGoSegUserError(f'{desc}: a worker process died (killed, out of memory, or crashed in a '
                                   'decoder); nothing was written, run it again') from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            cv2.setNumThreads(threads)
    return results


def execute(plan: Plan, workers: int = 1) -> bool:
    """Produce ``plan.out`` atomically; returns False when it was already complete (nothing is written)."""
    if not plan.tasks:
        raise LoGoSegUserError(f'{plan.name}: no images to prepare in {plan.raw}; check the id list and splits')
    expected = digest(plan)
    out = plan.out
    if out.exists() and not out.is_dir():
        raise LoGoSegUserError(f'--out {out} is a file; give a directory')
    if is_complete(out, expected):
        print(f'{out} is up to date', file=sys.stderr)
        return False
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise LoGoSegUserError(f'--out {out} exists and was not written by this script (no {MARKER}); '
                               'remove it or choose another directory')
    _remove_stale(out)
    tmp = out.parent / f'.{out.name}.tmp-{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        results = _map(partial(plan.convert, root=tmp), plan.tasks, workers, plan.name)
        if plan.finish is not None:
            plan.finish(tmp, results)
        marker = {'dataset': plan.name, 'digest': expected, 'files': _count_files(tmp)}
        if plan.content_hash:
            marker['content_sha256'] = content_digest(tmp)
        (tmp / MARKER).write_text(json.dumps(marker, indent=1) + '\n', encoding='utf-8')
        if out.exists():
            old = out.parent / f'.{out.name}.old-{os.getpid()}'
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f'{out}: {len(plan.tasks)} images prepared', file=sys.stderr)
    return True
