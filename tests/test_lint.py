"""The workflow passes Snakemake's linter and snakefmt's check, as the model workflows' CI does."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_snakemake_lint_is_clean():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_snakefmt_check_passes():
    snakefmt = shutil.which("snakefmt", path=str(Path(sys.executable).parent)) or "snakefmt"
    proc = subprocess.run([snakefmt, "--check", "."], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
