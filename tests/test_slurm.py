"""The same workflow submitted to a real single-node SLURM cluster through profiles/slurm.

tests/slurm/start-cluster.sh installs (Debian's slurm-wlm and munge) and starts munged, slurmctld and
slurmd on this host; it needs root, and the test is skipped, saying why, where that is impossible.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from etasvae.catalog import read_catalog
from test_workflow import TINY, run_snakemake

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0 or not shutil.which("apt-get") and not shutil.which("slurmctld"):
        pytest.skip("starting a SLURM cluster needs root and Debian's packages")
    proc = subprocess.run(["bash", str(ROOT / "tests" / "slurm" / "start-cluster.sh")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_simulations_run_as_slurm_jobs(cluster, tmp_path):
    targets = [f"results/catalogs/{cfg}/rep{r}.parquet" for cfg in ("mu4_K0.1_alpha1.5_c0.01_p1.2_D0.5_q1.5_gamma1_b1",) for r in range(3)]
    proc = run_snakemake(tmp_path, TINY, "--workflow-profile", str(ROOT / "profiles" / "slurm"), "--jobs", "3",
        # Poll a small test cluster often; the profile keeps the plugin's cluster-friendly defaults.
        "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "2", *targets)
    text = proc.stdout + proc.stderr
    submitted = [line for line in text.splitlines() if "SLURM" in line and "jobid" in line.lower()]
    assert len(submitted) == 3, text[-3000:]
    for target in targets:
        df, meta = read_catalog(tmp_path / target)
        assert len(df) > 0 and meta["replicate"] in (0, 1, 2)
    assert len(list((tmp_path / "results" / "logs" / "simulate").rglob("*.log"))) == 3
