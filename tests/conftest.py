import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """One local run of the whole pipeline and the surrogate on the tiny config, shared by the end-to-end and
    SLURM tests."""
    from test_workflow import TINY, run_snakemake

    workdir = tmp_path_factory.mktemp("run")
    run_snakemake(workdir, TINY, "all", "surrogate")
    return workdir
