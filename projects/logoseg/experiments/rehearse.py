"""A dress rehearsal of the paper profile: its configs at their real widths, in minutes, on any machine.

    python -m logoseg.experiments.rehearse [--rows full t1_vitl t1_convnext_b t1_convnext_l]

Each row runs as a grid row of the ``rehearsal`` profile of ``params.yaml``: the paper's configs with random
CLIP weights (nothing is downloaded), two iterations on the smoke stand-ins at the paper's batch per GPU with
a checkpoint half-way, the paper's test protocol on two images of each of the six benchmarks, one MLflow run
per row, and Tables 1-5 under ``results/rehearsal/tables``. A config that cannot build, train, checkpoint,
resume or evaluate fails here with its one-line error, not on day three of a cluster run. The default rows
are the four backbones of Table 1.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time

from .grid import load_yaml
from .repository import repo_root

PROFILE = 'rehearsal'
BACKBONE_ROWS = ('full', 't1_vitl', 't1_convnext_b', 't1_convnext_l')


def rehearse(rows: tuple[str, ...]) -> dict[str, str]:
    """Run ``rows`` under the rehearsal profile, then the tables; returns row -> outcome line."""
    from ..tools.prepare import smoke
    root = repo_root()
    settings = load_yaml(root / 'params.yaml')[PROFILE]
    smoke.prepare(root / settings['data_root'])  # skipped when the stand-ins are up to date
    subprocess.run([sys.executable, '-m', 'logoseg.tools.data_version', settings['data_root'],
                    '--out', f'results/{PROFILE}/data.json'], cwd=root, check=True)
    outcomes = {}
    for row in rows:
        start = time.time()
        command = [sys.executable, '-m', 'logoseg.experiments.run_row', row, '--profile', PROFILE]
        proc = subprocess.run(command, cwd=root,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        lines = proc.stderr.strip().splitlines()
        outcome = 'ok' if proc.returncode == 0 else (lines[-1] if lines else f'exit {proc.returncode}')
        outcomes[row] = f'{outcome} ({time.time() - start:.0f} s)'
        print(f'{row}: {outcomes[row]}', flush=True)
    tables = subprocess.run([sys.executable, 'analysis/tables.py', '--profile', PROFILE, '--out',
                             f'results/{PROFILE}/tables'], cwd=root, stdout=subprocess.DEVNULL)
    outcomes['tables'] = 'ok' if tables.returncode == 0 else f'exit {tables.returncode}'
    print(f'tables: {outcomes["tables"]} (results/{PROFILE}/tables)')
    return outcomes


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog='python -m logoseg.experiments.rehearse', description=__doc__.split('\n')[0])
    parser.add_argument('--rows', nargs='+', default=list(BACKBONE_ROWS),
                        help='grid rows to rehearse (default: the four backbones of Table 1)')
    args = parser.parse_args(argv)
    outcomes = rehearse(tuple(args.rows))
    sys.exit(0 if all(o.startswith('ok') for o in outcomes.values()) else 1)


if __name__ == '__main__':
    main()
