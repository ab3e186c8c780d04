"""Every option of LoGoSeg's model config is checked when the model is built: one line naming the option."""
import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mmseg.registry import MODELS

from logoseg.utils.errors import LoGoSegUserError

from ..conftest import REPO, SMOKE_CONFIG

MIM = str(Path(sys.executable).with_name('mim'))


def build_error(smoke_cfg, edit) -> str:
    """The message of building the smoke model after ``edit(cfg)``; fails unless it is one line."""
    cfg = copy.deepcopy(smoke_cfg.model.to_dict())
    edit(cfg)
    with pytest.raises(LoGoSegUserError) as err:
        MODELS.build(cfg)  # through the registry, as mim train / mim test / init_model build it
    message = str(err.value)
    assert '\n' not in message
    return message


def head(**options):
    return lambda cfg: cfg['decode_head'].update(options)


def test_typo_in_a_head_option_names_it_and_the_closest_option(smoke_cfg):
    message = build_error(smoke_cfg, head(prior_lamda=0.5))
    assert message.startswith('unknown option model.decode_head.prior_lamda=0.5 (did you mean prior_lambda?);')
    assert 'fusion_depth' in message and 'clip_dim' not in message  # lists what may be set, not what is filled


@pytest.mark.parametrize('edit, expected', [
    (lambda cfg: cfg['test_cfg'].update(strid=(32, 32)), 'unknown option model.test_cfg.strid=(32, 32) '
                                                         '(did you mean stride?)'),
    (lambda cfg: cfg['clip'].update(pretraind='openai'), 'unknown option model.clip.pretraind'),
    (lambda cfg: cfg.update(vocabulry='ade150'), 'unknown option model.vocabulry'),
    (lambda cfg: cfg['decode_head']['loss_decode'].update(normalise='valid_pixels'),
     'unknown option model.decode_head.loss_decode.normalise'),
    (lambda cfg: cfg['decode_head']['ss2d_cfg'].update(d_sate=4), 'unknown option model.decode_head.ss2d_cfg.d_sate'),
    (lambda cfg: cfg['data_preprocessor'].update(mena=[0, 0, 0]), 'unknown option model.data_preprocessor.mena'),
    (lambda cfg: cfg.update(train_cfg=dict(sampler=None)), 'unknown option model.train_cfg.sampler'),
    (head(clip_dim=64), 'model.decode_head.clip_dim=64: LoGoSeg sets clip_dim itself'),
    (head(type='LoGoSegHeed'), "model.decode_head.type='LoGoSegHeed' is not a registered model"),
    (lambda cfg: cfg['clip'].pop('mid_layer'), 'model.clip.mid_layer is missing'),
    (lambda cfg: cfg['clip'].update(mid_layer=4), 'model.clip.mid_layer=4: CLIP layer 4 out of range; this image '
                                                   'encoder has 4 blocks, 0 to 3'),
    (lambda cfg: cfg['clip'].update(guidance_layers=2), 'model.clip.guidance_layers=2: needs two entries'),
    (head(ss2d_cfg=dict(d_state=0)), 'model.decode_head.ss2d_cfg.d_state=0: use an integer >= 1'),
    (head(ss2d_cfg=dict(d_conv=2)), 'model.decode_head.ss2d_cfg.d_conv=2: use an odd kernel size'),
    (head(ss2d_cfg=dict(expand=0.01)), 'model.decode_head.ss2d_cfg.expand=0.01: leaves no inner channel'),
    (head(ss2d_cfg=dict(dt_rank='full')), "model.decode_head.ss2d_cfg.dt_rank='full': use an integer >= 1 or 'auto'"),
    (head(ss2d_cfg=dict(scan_backend='triton')), "model.decode_head.ss2d_cfg.scan_backend='triton': use one of"),
    (head(loss_decode=dict(type='MaskedBCELoss', normalize='mean')),
     "model.decode_head.loss_decode.normalize='mean': use one of"),
])
def test_unknown_or_misplaced_keys_anywhere_in_the_model_config(smoke_cfg, edit, expected):
    assert expected in build_error(smoke_cfg, edit)


@pytest.mark.parametrize('option, value, allowed', [
    ('prior_lambda', 2, "a number in [0, 1] or 'learnable'"),
    ('prior_lambda', -0.1, "a number in [0, 1] or 'learnable'"),
    ('prior_lambda', float('nan'), "a number in [0, 1] or 'learnable'"),
    ('prior_lambda', 'adaptive', "a number in [0, 1] or 'learnable'"),
    ('prior_lambda', True, "a number in [0, 1] or 'learnable'"),
    ('fusion_depth', 0, 'an integer from 1 to 3'),
    ('fusion_depth', 4, 'an integer from 1 to 3'),
    ('region_grid', 0, 'an integer >= 1'),
    ('num_queries', 0, 'an integer >= 1'),
    ('num_queries', 2.5, 'an integer >= 1'),
    ('tau', 0, 'a finite number > 0'),
    ('beta', -1.0, 'a finite number > 0'),
    ('num_heads', 3, 'must divide guidance_dim=32'),
    ('guidance_dim', 31, 'use an even number'),
    ('decoder_channels', (16,), 'two positive integers'),
    ('use_fusion', 'yes', 'True or False'),
    ('ss2d_cfg', 4, 'a dict of SS2D options'),
])
def test_out_of_range_head_values(smoke_cfg, option, value, allowed):
    extra = dict(num_heads=1) if option == 'guidance_dim' else {}
    message = build_error(smoke_cfg, head(**{option: value}, **extra))
    assert message.startswith(f'model.decode_head.{option}={value!r}: ') and allowed in message


@pytest.mark.parametrize('test_cfg, expected', [
    (dict(mode='sliding'), "model.test_cfg.mode='sliding': use one of 'whole', 'slide', 'slide_global'"),
    (dict(mode='slide_global', crop_size=(64, 64)), 'model.test_cfg.stride is missing'),
    (dict(mode='slide', crop_size=(0, 64), stride=(32, 32)), 'model.test_cfg.crop_size=(0, 64): use a pair'),
    (dict(mode='slide', crop_size=(64, 64), stride='32'), "model.test_cfg.stride='32': use a pair"),
    (dict(mode='slide_global', crop_size=(64, 64), stride=(96, 96)),
     'model.test_cfg.stride=(96, 96): larger than crop_size=(64, 64)'),
    (dict(mode='slide_global', crop_size=(64, 64), stride=(32, 32), input_size=(60, 60)),
     "model.test_cfg.input_size=(60, 60): use multiples of the image encoder's 8-pixel patch"),
])
def test_bad_test_cfg(smoke_cfg, test_cfg, expected):
    assert expected in build_error(smoke_cfg, lambda cfg: cfg.update(test_cfg=test_cfg))


def test_good_test_cfg_sizes_are_normalised(build_tiny_model):
    model = build_tiny_model(test_cfg=dict(mode='slide_global', crop_size=64, stride=[32, 32], input_size=(48, 48)))
    assert model.test_cfg.crop_size == (64, 64) and model.test_cfg.stride == (32, 32)
    # window keys stay accepted in whole mode: `--cfg-options model.test_cfg.mode=whole` must work on ViT configs
    build_tiny_model(test_cfg=dict(mode='whole', crop_size=(64, 64), stride=(32, 32)))


def test_a_single_prompt_template_string_is_one_template(build_tiny_model):
    model = build_tiny_model(prompt_templates='a photo of a {}.')
    assert model.text_encoder.templates == ('a photo of a {}.',)


def _run_mim(args, cwd):
    """mim's output as a terminal shows it: stdout and stderr in one stream."""
    env = dict(os.environ, PYTHONPATH=str(REPO / 'projects'))
    return subprocess.run([MIM, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600, env=env)


@pytest.mark.slow
@pytest.mark.parametrize('command, option', [
    (['train', 'mmseg', str(SMOKE_CONFIG)], 'model.decode_head.prior_lamda=0.5'),
    (['train', 'mmseg', str(SMOKE_CONFIG)], 'model.decode_head.fusion_depth=0'),
    (['test', 'mmseg', str(SMOKE_CONFIG), '--checkpoint', 'never_read.pth'], 'model.test_cfg.strid=2'),
])
def test_mim_train_and_test_print_one_line(tmp_path, command, option):
    """What the user sees (docs/training.md): our line once, as the last line of the training/test script;
    after it only mim 0.3.9's own CalledProcessError traceback, which mim prints for any failing script."""
    proc = _run_mim([*command, '--work-dir', str(tmp_path / 'run'), '--cfg-options', option], cwd=tmp_path)
    assert proc.returncode != 0
    lines = proc.stdout.splitlines()
    errors = [i for i, line in enumerate(lines) if 'logoseg: error: ' in line]
    assert len(errors) == 1 and lines[errors[0]].startswith('logoseg: error: '), proc.stdout[-2000:]
    assert option.split('=')[0] in lines[errors[0]]
    mim_traceback = lines[errors[0] + 1:]
    assert mim_traceback[0] == 'Traceback (most recent call last):', proc.stdout[-2000:]
    assert mim_traceback[-1].startswith('subprocess.CalledProcessError: Command ')
    assert all(line.startswith(' ') for line in mim_traceback[1:-1])  # mim's frames, nothing of ours
    assert sum(line.startswith('Traceback') for line in lines) == 1
    if command[0] == 'train':  # checked before mmengine's Runner logs anything, creates the work dir or a run
        assert lines[errors[0] - 1].startswith('Training command is ')
        assert not any('Config:' in line or 'System environment' in line for line in lines)
        assert not (tmp_path / 'run').exists()


CHECKED_BEFORE_BUILD = [
    head(prior_lamda=0.5), head(fusion_depth=0), head(prior_lambda=2), head(num_heads=3),
    head(ss2d_cfg=dict(d_conv=2)), head(loss_decode=dict(type='MaskedBCELoss', normalize='mean')),
    head(clip_dim=64), head(type='LoGoSegHeed'),
    lambda cfg: cfg['test_cfg'].update(strid=(32, 32)), lambda cfg: cfg.update(test_cfg=dict(mode='sliding')),
    lambda cfg: cfg['clip'].update(pretraind='openai'), lambda cfg: cfg['clip'].pop('mid_layer'),
    lambda cfg: cfg.update(vocabulry='ade150'), lambda cfg: cfg.update(train_cfg=dict(sampler=None)),
]


@pytest.mark.parametrize('edit', CHECKED_BEFORE_BUILD)
def test_check_config_refuses_what_the_build_refuses_with_the_same_line(smoke_cfg, edit):
    from logoseg.models import LoGoSeg
    cfg = copy.deepcopy(smoke_cfg.model.to_dict())
    edit(cfg)
    with pytest.raises(LoGoSegUserError) as err:
        LoGoSeg.check_config(cfg)
    assert str(err.value) == build_error(smoke_cfg, edit)


def test_logoseg_runner_checks_the_model_before_the_runner_sets_up(smoke_cfg, tmp_path):
    """The configs' runner_type: a bad option stops RUNNERS.build before the work dir, logger or MLflow run."""
    from mmseg.registry import RUNNERS
    cfg = copy.deepcopy(smoke_cfg)
    assert cfg.runner_type == 'LoGoSegRunner'
    cfg.work_dir = str(tmp_path / 'run')
    cfg.model.decode_head.fusion_depth = 4
    with pytest.raises(LoGoSegUserError, match='fusion_depth=4'):
        RUNNERS.build(cfg)
    assert not (tmp_path / 'run').exists()
    from logoseg.models import LoGoSeg
    LoGoSeg.check_config(smoke_cfg.model)  # the shipped config passes
