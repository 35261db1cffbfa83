"""The whole tiny pipeline submitted to a real single-node SLURM cluster through profiles/slurm.

tests/slurm/start-cluster.sh starts munged, slurmctld and slurmd, on free ports, with every file they use
under a temporary directory (nothing under /etc; it installs Debian's slurm-wlm and munge if missing);
tests/slurm/stop-cluster.sh stops them when the module ends, and the fixture checks that they are gone. It
needs root, and the test is skipped, saying why, where that is impossible.

Every rule runs as an sbatch job; the outputs must equal the local run's (conftest.finished_run) byte for
byte, and each job's allocation, read back from `scontrol show job` (the test cluster has no accounting, so
no sacct; finished jobs stay visible for an hour, MinJobAge), must be the cpus, memory and time limit that
Snakemake computed for it, which for the rules profiles/slurm lists are the profile's values.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from test_workflow import TINY, run_snakemake

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[1]
SLURM = ROOT / "tests" / "slurm"
RULES = ("simulate_catalog", "build_windows", "pool_windows", "import_dataset", "build_dataset_windows", "train_vae",
         "embed_windows", "latent_maps", "sample_synthetic", "evaluate_model", "invert_catalog", "invert_model",
         "report_page", "summary", "train_surrogate", "generate_surrogate", "evaluate_surrogate", "surrogate_report")
# Outputs that record when or how long, not what: compared by presence only.
TIMING = ("logs", "benchmarks")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if os.geteuid() != 0 or not shutil.which("apt-get") and not shutil.which("slurmctld"):
        pytest.skip("starting a SLURM cluster needs root and Debian's packages")
    state = tmp_path_factory.mktemp("slurm")
    proc = subprocess.run(["bash", str(SLURM / "start-cluster.sh"), str(state)], capture_output=True, text=True)
    pidfiles = [state / "slurmd.pid", state / "slurmctld.pid", state / "munge" / "munged.pid"]
    pids = [int(p.read_text()) for p in pidfiles if p.exists() and p.read_text().strip()]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLURM_CONF", str(state / "slurm.conf"))
        mp.setenv("PATH", f"{state / 'bin'}{os.pathsep}{os.environ['PATH']}")  # its srun (start-cluster.sh)
        try:
            assert proc.returncode == 0, proc.stdout + proc.stderr
            yield state
        finally:
            stop = subprocess.run(["bash", str(SLURM / "stop-cluster.sh"), str(state)], capture_output=True, text=True)
            assert len(pids) == 3 and not [pid for pid in pids if _alive(pid)], stop.stderr
            assert stop.returncode == 0, stop.stderr


def planned_resources(text: str) -> dict[str, set[tuple[int, int, int]]]:
    """{rule: {(threads, mem_mb, runtime)}} from the job information Snakemake prints when it submits a job."""
    out: dict[str, set] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", text):
        head = re.match(r"rule (\w+):", block)  # not "localrule all:", which runs in Snakemake itself
        resources = re.search(r"^\s+resources: (.*)$", block, re.M)
        if not head or not resources:
            continue
        values = dict(item.split("=", 1) for item in resources.group(1).split(", "))
        threads = re.search(r"^\s+threads: (\d+)$", block, re.M)
        out.setdefault(head.group(1), set()).add(
            (int(threads.group(1)) if threads else 1, int(values["mem_mb"]), int(values["runtime"])))
    return out


def allocations() -> dict[str, list[dict[str, str]]]:
    """{rule: [scontrol's fields of each of its jobs]}; the plugin puts the rule in the job comment."""
    text = subprocess.run(["scontrol", "show", "job", "--oneliner"], capture_output=True, text=True, check=True).stdout
    out: dict[str, list] = {}
    for line in text.splitlines():
        fields = dict(re.findall(r"(\S+?)=(\S*)", line))
        rule = next(r for r in RULES if re.fullmatch(rf"rule_{r}(_wildcards_.*)?", fields["Comment"]))
        out.setdefault(rule, []).append(fields)
    return out


def minutes(limit: str) -> int:
    """scontrol's TimeLimit ([days-]hours:minutes:seconds) in minutes."""
    days, _, hms = limit.rpartition("-")
    h, m, s = (int(v) for v in hms.split(":"))
    return int(days or 0) * 1440 + h * 60 + m + (s > 0)


def test_whole_pipeline_runs_as_slurm_jobs_with_the_local_bytes(cluster, finished_run, tmp_path):
    proc = run_snakemake(tmp_path, TINY, "all", "surrogate", "--workflow-profile", str(ROOT / "profiles" / "slurm"), "--jobs", "4",
        # Poll a small test cluster often; the profile keeps the plugin's cluster-friendly defaults.
        "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "2",
        timeout=1800)  # a guard against a job that never starts (about 5 minutes on 2 idle cores)
    text = proc.stdout + proc.stderr

    # Every job went through sbatch: one SLURM job per planned job, of every rule.
    jobs = allocations()
    planned = planned_resources(text)
    assert set(jobs) == set(RULES) == set(planned), (set(jobs), set(planned))
    # The tiny DAG's 41 jobs less `all`, a local rule: 6 simulations, 2 + 1 windows, the dataset's import and
    # windows, 6 per model for 4 models (2 configs, the dataset, pooled), 2 + 2 inversions (the configs'
    # held-out catalogs and models), 1 summary; the surrogate's 5 (train, generate, 2 evaluations, report).
    assert sum(len(v) for v in jobs.values()) == 45, {r: len(v) for r, v in jobs.items()}
    assert all(j["JobState"] == "COMPLETED" for v in jobs.values() for j in v)

    # Each job got the cpus, memory and time limit Snakemake asked for; the profile's values where it sets them.
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    for rule, asked in planned.items():
        assert len(asked) == 1, (rule, asked)
        (threads, mem_mb, runtime), = asked
        if rule in profile["set-resources"]:
            assert (mem_mb, runtime) == (profile["set-resources"][rule]["mem_mb"], profile["set-resources"][rule]["runtime"])
        if rule in profile["set-threads"]:
            assert threads == profile["set-threads"][rule]
        for job in jobs[rule]:
            got = (int(job["NumCPUs"]), int(job["CPUs/Task"]), job["MinMemoryNode"], minutes(job["TimeLimit"]))
            assert got == (threads, threads, f"{mem_mb}M", runtime), (rule, got)

    # The same bytes as the local run: catalogs, windows, models, embeddings, synthetic catalogs, metrics,
    # figures and pages.
    def files(root):
        return {str(p.relative_to(root)) for p in (root / "results").rglob("*") if p.is_file()}

    assert files(tmp_path) == files(finished_run)
    compared = sorted(f for f in files(tmp_path) if f.split("/")[1] not in TIMING)
    assert any(f.endswith("model.pt") for f in compared) and any(f.endswith(".html") for f in compared)
    differ = [f for f in compared if (tmp_path / f).read_bytes() != (finished_run / f).read_bytes()]
    assert differ == [], differ
