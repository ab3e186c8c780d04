"""Record the version of the data a grid profile trains and evaluates on (the DVC stages ``data_<profile>``).

    python -m logoseg.tools.data_version prepared/coco_stuff171 prepared/ade150 ... --out results/paper/data.json

The version is a hash of the DVC hashes that ``dvc.lock`` holds for those prepared folders (the outputs of
the ``prepare_*`` stages that just ran), so a run's ``data_version`` tag names exactly the data it used.
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import yaml

from ..utils.files import write_json
from ..utils.errors import LoGoSegUserError


def dvc_hashes(paths: list[str], lock_file: Path = Path('dvc.lock')) -> dict[str, str]:
    """The md5 that ``dvc.lock`` records for each output path."""
    if not lock_file.is_file():
        raise LoGoSegUserError(f'{lock_file} not found; run this as a DVC stage (dvc repro ablation_grid)')
    lock = yaml.safe_load(lock_file.read_text()) or {}
    recorded = {out['path']: out.get('md5', '') for stage in lock.get('stages', {}).values()
                for out in stage.get('outs', [])}
    missing = [p for p in paths if p.rstrip('/') not in recorded]
    if missing:
        raise LoGoSegUserError(f'dvc.lock records no output {", ".join(missing)}; prepare it first '
                               '(dvc repro prepare_<name>)')
    return {p: recorded[p.rstrip('/')] for p in paths}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog='python -m logoseg.tools.data_version', description=__doc__.split('\n')[0])
    parser.add_argument('paths', nargs='+', help='prepared data folders (DVC outputs)')
    parser.add_argument('--out', required=True, help='JSON file: {"version": ..., "folders": {path: md5}}')
    args = parser.parse_args(argv)
    hashes = dvc_hashes(args.paths)
    version = hashlib.sha256(''.join(f'{p}={h}\n' for p, h in sorted(hashes.items())).encode()).hexdigest()[:12]
    write_json(dict(version=version, folders=hashes), Path(args.out))


if __name__ == '__main__':
    main()
