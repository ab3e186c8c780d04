"""Measured figures as data: one CSV row per figure, with the machine and the date it was measured on.

``docs/benchmarks/*.csv`` hold them (``docs/benchmark.md`` shows them); ``python -m logoseg.tools.benchmark
--record`` and ``python -m logoseg.tools.gpu_benchmark --record`` append a run's figures. Docstrings and
comments keep the reason for a design, not its timing: a figure depends on the machine and the day.
"""
from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

from .files import append_csv

COLUMNS = ['date', 'machine', 'device', 'threads', 'repeats', 'section', 'config', 'setting', 'quantity', 'value']
# numbers that say what was measured (the setting of a row), not a measurement
SETTING_KEYS = ('batch', 'eval_classes', 'large_classes', 'prior_top_k', 'autocast_bf16', 'megapixels', 'classes')
DEFAULT_RECORD = Path(__file__).resolve().parents[3] / 'docs' / 'benchmarks' / 'speed.csv'


def machine() -> str:
    """The CPU model and its core count (what a CPU timing depends on), e.g. ``AMD EPYC 7B13, 2 cores``."""
    model = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            model = next((line.split(':', 1)[1].strip() for line in f if line.startswith('model name')), model)
    except OSError:
        pass
    return f'{model}, {os.cpu_count()} cores'


def _setting(row: dict) -> str:
    parts = []
    for key, value in row.items():
        if key == 'config' or isinstance(value, dict):
            continue
        if isinstance(value, (list, tuple)):
            value = ' '.join(map(str, value))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and key not in SETTING_KEYS:
            continue
        if value is not None:
            parts.append(f'{key}={value}')
    return '; '.join(parts)


def _numbers(data: dict, prefix: str = ''):
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _numbers(value, f'{prefix}{key}.')
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield f'{prefix}{key}', value


def report_rows(report: dict, device: str) -> list[dict]:
    """The figures of a benchmark report (``tools/benchmark.py`` or ``tools/gpu_benchmark.py``) as CSV rows.

    Each list of entries (``models``, ``train``, ``inference``, ``segment``) gives one row per number of each
    entry, the entry's other fields as its ``setting``; ``selective_scan`` gives one row per number under its
    ``shape``.
    """
    base = dict(date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d'), machine=machine(),
                device=device, threads=report.get('threads', ''), repeats=report.get('repeats', ''))
    rows = []
    for section, entries in report.items():
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            continue
        for entry in entries:
            config = os.path.basename(str(entry.get('config', report.get('config', ''))))
            numbers = {k: v for k, v in entry.items() if not isinstance(v, dict) and k not in SETTING_KEYS}
            for quantity, value in _numbers(numbers):
                rows.append(dict(base, section=section, config=config, setting=_setting(entry), quantity=quantity,
                                 value=value))
    scan = report.get('selective_scan')
    if scan:
        for quantity, value in _numbers(scan):
            rows.append(dict(base, section='selective_scan', config='', setting=scan.get('shape', ''),
                             quantity=quantity, value=value))
    return rows


def record(report: dict, device: str, path: str | Path = DEFAULT_RECORD) -> int:
    """Append ``report``'s figures to the CSV ``path``; returns the number of rows."""
    rows = report_rows(report, device)
    append_csv(rows, path, COLUMNS)
    return len(rows)
