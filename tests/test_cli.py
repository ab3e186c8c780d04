"""`logoseg segment` end to end on the session's smoke checkpoint: outputs, agreement, every bad input."""
import contextlib
import io
import json
import os
import subprocess
import sys
import tomllib
from importlib import import_module

import cv2
import numpy as np
import pytest
from PIL import Image

from logoseg import cli
from logoseg.apis import LoGoSegPredictor
from logoseg.apis import outputs as outputs_module
from logoseg.apis import predictor as predictor_module

from .conftest import REPO, SMOKE_CONFIG

ADE_IMAGES = REPO / 'tests' / 'data' / 'ade20k_val' / 'images'
VOCAB = ('wall', 'floor', 'sky', 'tree')


def run_cli(*args) -> tuple[int, str]:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        status = cli.main([str(a) for a in args])
    return status, stderr.getvalue()


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith('logoseg: error:')]


def segment_args(images, out, checkpoint, *extra, vocab=', '.join(VOCAB)):
    vocab_args = ['--vocab', vocab] if vocab is not None else []
    return ['segment', *images, *vocab_args, '--config', SMOKE_CONFIG, '--checkpoint', checkpoint, '--out', out,
            *extra]


def outputs_of(out, stem):
    return [out / 'labels' / f'{stem}.png', out / 'overlays' / f'{stem}.png', out / 'json' / f'{stem}.json']


def all_files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob('*') if p.is_file())


@pytest.fixture(scope='module')
def ade_run(smoke_checkpoint, tmp_path_factory):
    """The issue's `done when` command, on the real ADE20K samples."""
    out = tmp_path_factory.mktemp('cli') / 'out'
    status, stderr = run_cli(*segment_args([ADE_IMAGES], out, smoke_checkpoint))
    return status, stderr, out


@pytest.fixture
def small_images(tmp_path):
    """Three small real-photo crops in a folder (the tiny model segments them in a blink)."""
    folder = tmp_path / 'images'
    folder.mkdir()
    photo = Image.open(ADE_IMAGES / 'ADE_val_00000001.jpg').convert('RGB')
    for index, name in enumerate(['a.png', 'b.png', 'c.jpg']):
        photo.crop((100 * index, 0, 100 * index + 56, 48)).save(folder / name)
    return folder


def test_three_files_per_image_a_progress_bar_and_a_summary(ade_run):
    status, stderr, out = ade_run
    assert status == 0, stderr
    stems = sorted(p.stem for p in ADE_IMAGES.glob('*.jpg'))
    assert all_files(out) == sorted(f'{kind}/{stem}.{ext}' for stem in stems
                                    for kind, ext in (('labels', 'png'), ('overlays', 'png'), ('json', 'json')))
    assert '3/3' in stderr and ('img/s' in stderr or 's/img' in stderr)  # tqdm: images done / total, speed
    assert stderr.strip().splitlines()[-1].startswith('logoseg segment: 3 done, 0 failed in ')
    assert not error_lines(stderr)
    umask = os.umask(0)
    os.umask(umask)
    assert {p.stat().st_mode & 0o777 for p in out.rglob('*.*')} == {0o666 & ~umask}  # not private temp files


def test_label_map_legend_and_json_agree(ade_run):
    _, _, out = ade_run
    for record_path in sorted((out / 'json').glob('*.json')):
        record = json.loads(record_path.read_text())
        labels = cv2.imread(str(out / record['label_map']['file']), cv2.IMREAD_UNCHANGED)
        assert labels.dtype == np.uint8 and record['label_map']['dtype'] == 'uint8'
        assert labels.shape == (record['image_size']['height'], record['image_size']['width'])
        assert record['vocabulary'] == list(VOCAB)
        counts = np.bincount(labels.ravel(), minlength=len(VOCAB))
        assert len(counts) == len(VOCAB)
        present = [entry['name'] for entry in record['classes_present']]
        assert present == [VOCAB[i] for i in np.flatnonzero(counts)] and len(present) >= 2
        for entry in record['classes_present']:
            assert VOCAB[entry['index']] == entry['name']
            assert entry['pixel_fraction'] == pytest.approx(counts[entry['index']] / labels.size)
        assert set(record['object_prior']) == set(VOCAB)
        assert record['model']['checkpoint'].endswith('.pth') and len(record['model']['checkpoint_sha256']) == 64
        # the legend panel, right of the image, shows the colour swatch of exactly the classes present
        overlay = np.asarray(Image.open(out / record['overlay']).convert('RGB'))
        assert overlay.shape[0] >= labels.shape[0] and overlay.shape[1] > labels.shape[1]
        panel_colours = set(map(tuple, overlay[:, labels.shape[1]:].reshape(-1, 3).tolist()))
        colours = {entry['name']: tuple(entry['colour']) for entry in record['classes_present']}
        assert set(colours.values()) <= panel_colours
        assert len(set(colours.values())) == len(colours)


def test_cli_and_python_api_give_the_same_label_map(ade_run, smoke_checkpoint):
    _, _, out = ade_run
    image = ADE_IMAGES / 'ADE_val_00000002.jpg'
    result = LoGoSegPredictor(SMOKE_CONFIG, smoke_checkpoint).segment(image, list(VOCAB))
    written = cv2.imread(str(out / 'labels' / 'ADE_val_00000002.png'), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(written, result.label_map)
    record = json.loads((out / 'json' / 'ADE_val_00000002.json').read_text())
    assert [e['name'] for e in record['classes_present']] == list(result.class_fractions())
    assert list(record['object_prior'].values()) == pytest.approx(result.object_prior.tolist(), abs=1e-6)


def test_vocabulary_file_and_sixteen_bit_label_maps(small_images, smoke_checkpoint, tmp_path):
    vocab_file = tmp_path / 'classes.txt'
    vocab_file.write_text('wall, brick wall\n\nsky\ntree\n')
    status, stderr = run_cli(*segment_args([small_images / 'a.png'], tmp_path / 'txt', smoke_checkpoint,
                                           '--vocab-file', vocab_file, vocab=None))
    assert status == 0, stderr
    assert json.loads((tmp_path / 'txt' / 'json' / 'a.json').read_text())['vocabulary'] == [
        'wall, brick wall', 'sky', 'tree']
    status, stderr = run_cli(*segment_args([small_images / 'a.png'], tmp_path / 'big', smoke_checkpoint,
                                           '--vocab-set', 'ade847', vocab=None))
    assert status == 0, stderr
    labels = cv2.imread(str(tmp_path / 'big' / 'labels' / 'a.png'), cv2.IMREAD_UNCHANGED)
    record = json.loads((tmp_path / 'big' / 'json' / 'a.json').read_text())
    assert labels.dtype == np.uint16 and record['label_map']['dtype'] == 'uint16' and len(record['vocabulary']) == 847
    assert sorted(e['index'] for e in record['classes_present']) == np.unique(labels).tolist()


def test_an_unreadable_image_is_reported_and_skipped(small_images, smoke_checkpoint, tmp_path):
    (small_images / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 not really a jpeg')
    (small_images / 'grey.png').write_bytes(b'')
    Image.open(small_images / 'a.png').convert('L').save(small_images / 'sub_grey.png')
    out = tmp_path / 'out'
    status, stderr = run_cli(*segment_args([small_images, tmp_path / 'missing.png'], out, smoke_checkpoint))
    assert status == 1
    errors = error_lines(stderr)
    assert len(errors) == 3
    assert any('broken.jpg: not a readable image' in e for e in errors)
    assert any('grey.png: not a readable image' in e for e in errors)
    assert any('missing.png: no such file or folder' in e for e in errors)
    assert 'logoseg segment: 4 done, 3 failed' in stderr
    assert all_files(out / 'labels') == ['a.png', 'b.png', 'c.png', 'sub_grey.png']
    assert all_files(out / 'json') == ['a.json', 'b.json', 'c.json', 'sub_grey.json']


@pytest.mark.parametrize('vocab, message', [('', 'empty vocabulary'), (' , ', 'blank name'),
                                            ('cat,, dog', 'class 1 has a blank name'),
                                            ('cat, dog, Cat', "duplicate class name 'Cat' at positions 0 and 2")])
def test_bad_vocabularies_are_refused_before_loading_anything(small_images, tmp_path, monkeypatch, vocab, message):
    monkeypatch.setattr(predictor_module.LoGoSegPredictor, '__init__', lambda *a, **k: pytest.fail('model loaded'))
    status, stderr = run_cli(*segment_args([small_images], tmp_path / 'out', tmp_path / 'none.pth', vocab=vocab))
    assert status == 2 and error_lines(stderr) == stderr.strip().splitlines()
    assert len(error_lines(stderr)) == 1 and message in stderr
    assert not (tmp_path / 'out').exists()


def test_missing_or_mismatched_checkpoint_is_refused_before_any_image_is_read(small_images, smoke_checkpoint,
                                                                             tmp_path, monkeypatch):
    monkeypatch.setattr(predictor_module, 'read_image', lambda image: pytest.fail('read an image'))
    status, stderr = run_cli(*segment_args([small_images], tmp_path / 'out', tmp_path / 'missing.pth'))
    assert status == 2 and len(error_lines(stderr)) == 1 and 'checkpoint not found at' in stderr
    other = tmp_path / 'other_config.py'
    other.write_text(f"_base_ = ['{SMOKE_CONFIG}']\nmodel = dict(decode_head=dict(guidance_dim=16))\n")
    stderr_io = io.StringIO()
    with contextlib.redirect_stderr(stderr_io):
        status = cli.main(['segment', str(small_images), '--vocab', 'sky', '--config', str(other),
                           '--checkpoint', str(smoke_checkpoint), '--out', str(tmp_path / 'out')])
    assert status == 2 and 'does not fit' in stderr_io.getvalue() and 'other_config.py' in stderr_io.getvalue()
    assert not (tmp_path / 'out').exists()


def test_two_inputs_with_the_same_output_name_are_refused(small_images, tmp_path, smoke_checkpoint):
    Image.open(small_images / 'a.png').save(small_images / 'a.jpg')
    status, stderr = run_cli(*segment_args([small_images], tmp_path / 'out', smoke_checkpoint))
    assert status == 2 and 'would write the same outputs (a.*)' in stderr


def failing_replace(after: int, error: BaseException, out):
    """os.replace that raises ``error`` on its ``after``-th rename into ``out``."""
    real = os.replace
    calls = []

    def replace(src, dst):
        if str(dst).startswith(str(out)):
            calls.append(dst)
            if len(calls) == after:
                raise error
        return real(src, dst)

    return replace


def test_an_interrupted_run_leaves_no_partial_files(small_images, smoke_checkpoint, tmp_path, monkeypatch):
    out = tmp_path / 'out'
    # image a.png: 3 renames; b.png is interrupted after its label map was renamed
    monkeypatch.setattr(outputs_module.os, 'replace', failing_replace(5, KeyboardInterrupt(), out))
    status, stderr = run_cli(*segment_args([small_images], out, smoke_checkpoint))
    assert status == 130 and 'interrupted' in stderr
    assert all_files(out) == ['json/a.json', 'labels/a.png', 'overlays/a.png']  # no temporaries, nothing of b


def test_a_failed_write_is_reported_and_leaves_nothing_of_that_image(small_images, smoke_checkpoint, tmp_path,
                                                                     monkeypatch):
    out = tmp_path / 'out'
    monkeypatch.setattr(outputs_module.os, 'replace',
                        failing_replace(6, OSError(28, 'No space left on device'), out))
    status, stderr = run_cli(*segment_args([small_images], out, smoke_checkpoint))
    assert status == 1
    assert error_lines(stderr) == [f'logoseg: error: {small_images / "b.png"}: outputs not written '
                                   '([Errno 28] No space left on device)']
    assert all_files(out) == sorted(f'{kind}/{stem}.{ext}' for stem in ('a', 'c')
                                    for kind, ext in (('labels', 'png'), ('overlays', 'png'), ('json', 'json')))


def test_the_installed_entry_point_is_this_main():
    scripts = tomllib.loads((REPO / 'pyproject.toml').read_text())['project']['scripts']
    module, function = scripts['logoseg'].split(':')
    main = getattr(import_module(module), function)
    assert main is cli.main
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), pytest.raises(SystemExit) as exit_:
        main(['segment', '--help'])
    assert exit_.value.code == 0
    assert all(flag in stdout.getvalue() for flag in ('--vocab', '--vocab-file', '--vocab-set', '--mode'))


def test_a_real_process_prints_one_line_and_exits_2(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO / 'projects'))
    proc = subprocess.run([sys.executable, '-m', 'logoseg.cli', 'segment', str(ADE_IMAGES), '--vocab', 'sky',
                           '--config', str(SMOKE_CONFIG), '--checkpoint', str(tmp_path / 'missing.pth'),
                           '--out', str(tmp_path / 'out')], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert error_lines(proc.stderr) == [f'logoseg: error: checkpoint not found at {tmp_path / "missing.pth"}; '
                                        'pass the .pth file a LoGoSeg training run saved '
                                        '(work_dirs/<run>/iter_<N>.pth)']


@pytest.mark.parametrize('content, message', [(None, 'cannot read --vocab-file'),
                                              ('{"a": 1}', 'must hold a JSON list'),
                                              ('["cat", ', 'is not valid JSON'),
                                              ('["cat", "cat"]', 'duplicate class name')])
def test_bad_vocabulary_files_are_refused(small_images, tmp_path, monkeypatch, content, message):
    monkeypatch.setattr(predictor_module.LoGoSegPredictor, '__init__', lambda *a, **k: pytest.fail('model loaded'))
    vocab_file = tmp_path / 'classes.json'
    if content is not None:
        vocab_file.write_text(content)
    status, stderr = run_cli(*segment_args([small_images], tmp_path / 'out', tmp_path / 'none.pth',
                                           '--vocab-file', vocab_file, vocab=None))
    assert status == 2 and len(error_lines(stderr)) == 1 and message in stderr


def test_every_odd_image_is_segmented_or_skipped_in_one_line(small_images, smoke_checkpoint, tmp_path, monkeypatch):
    """Tiny, one-row, one-column, CMYK and animated images are segmented; a zero-byte file, an image above
    Pillow's size guard and one the model fails on each cost one line, and the folder completes."""
    photo = Image.open(small_images / 'a.png')
    photo.crop((0, 0, 1, 1)).save(small_images / 'one_pixel.png')
    photo.crop((0, 0, 40, 1)).save(small_images / 'one_row.png')
    photo.crop((0, 0, 1, 40)).save(small_images / 'one_column.png')
    photo.convert('CMYK').save(small_images / 'cmyk.jpg')
    frames = [photo.convert('P'), photo.rotate(90).convert('P')]
    frames[0].save(small_images / 'animated.gif', save_all=True, append_images=frames[1:], duration=100, loop=0)
    (small_images / 'zero_bytes.png').write_bytes(b'')
    photo.resize((160, 120)).save(small_images / 'huge.png')
    # Pillow's decompression-bomb guard, scaled down: 'huge.png' (19200 pixels) exceeds 2 x 6000
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 6000)
    real_segment = LoGoSegPredictor.segment

    def segment(self, image, *args, **kwargs):
        if str(image).endswith('c.jpg'):
            raise RuntimeError('Input and output sizes should be greater than 0\nsecond line')
        return real_segment(self, image, *args, **kwargs)

    monkeypatch.setattr(LoGoSegPredictor, 'segment', segment)
    out = tmp_path / 'out'
    status, stderr = run_cli(*segment_args([small_images], out, smoke_checkpoint))
    assert status == 1
    errors = error_lines(stderr)
    assert len(errors) == 3 and 'Traceback' not in stderr, stderr
    assert any(e.endswith('zero_bytes.png: not a readable image (cannot identify image file '
                          f"'{small_images / 'zero_bytes.png'}')") for e in errors)
    assert any('huge.png: larger than the 0.012 megapixels Pillow opens' in e and 'downscale it' in e for e in errors)
    assert any('c.jpg: not segmented (RuntimeError: Input and output sizes should be greater than 0); the other '
               'images go on' in e for e in errors)
    done = ['a', 'animated', 'b', 'cmyk', 'one_column', 'one_pixel', 'one_row']
    assert 'logoseg segment: 7 done, 3 failed' in stderr
    assert all_files(out / 'labels') == [f'{stem}.png' for stem in done]
    assert all_files(out / 'overlays') == [f'{stem}.png' for stem in done]
    for stem, size in [('one_pixel', (1, 1)), ('one_row', (1, 40)), ('one_column', (40, 1)), ('animated', (48, 56)),
                       ('cmyk', (48, 56))]:
        assert cv2.imread(str(out / 'labels' / f'{stem}.png'), cv2.IMREAD_UNCHANGED).shape == size
    overlay = np.asarray(Image.open(out / 'overlays' / 'one_pixel.png'))
    assert overlay.shape[0] > 20 and overlay.shape[1] > 40  # the legend stays readable beside one pixel


def test_help_imports_no_heavy_library(tmp_path):
    """`logoseg --help` answers at once: the console script defers torch, MMSeg and open_clip (seconds of
    imports) until a command runs."""
    probe = ("import sys; sys.argv = ['logoseg', '--help']\n"
             'from logoseg.cli import main\n'
             'try:\n    main()\nexcept SystemExit:\n    pass\n'
             "heavy = ('torch', 'mmseg', 'mmengine', 'open_clip', 'cv2')\n"
             "print('HEAVY', sorted(m for m in heavy if m in sys.modules))")
    env = dict(os.environ, PYTHONPATH=str(REPO / 'projects'))
    proc = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True, env=env, timeout=120)
    assert 'logoseg segment' in proc.stdout or 'COMMAND' in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == 'HEAVY []', proc.stdout + proc.stderr


def test_demo_listens_on_loopback_unless_told(monkeypatch, smoke_checkpoint):
    launched = {}
    demo_module = pytest.importorskip('logoseg.apis.demo')
    monkeypatch.setattr(demo_module.gr.Blocks, 'launch', lambda self, **kwargs: launched.update(kwargs))
    status, stderr = run_cli('demo', '--config', SMOKE_CONFIG, '--checkpoint', smoke_checkpoint)
    assert status == 0 and launched['server_name'] == '127.0.0.1' and 'http://127.0.0.1:7860' in stderr
    status, _ = run_cli('demo', '--config', SMOKE_CONFIG, '--checkpoint', smoke_checkpoint, '--host', '0.0.0.0',
                        '--port', '8000')
    assert (launched['server_name'], launched['server_port']) == ('0.0.0.0', 8000)
    status, stderr = run_cli('demo', '--config', SMOKE_CONFIG, '--checkpoint', 'missing.pth')
    assert status == 2 and 'checkpoint not found at missing.pth' in stderr
