"""The linter CI runs: pyflakes and pycodestyle (ruff, configured in pyproject.toml) find nothing. Undefined
names hide in error paths that tests rarely reach (an unimported helper turned a one-line message into a
NameError traceback)."""
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    ruff = shutil.which('ruff', path=str(Path(sys.executable).parent)) or shutil.which('ruff')
    assert ruff, 'ruff is not installed: pip install -e ".[dev]"'
    proc = subprocess.run([ruff, 'check', '--output-format', 'concise', 'projects', 'tests', 'analysis'], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
