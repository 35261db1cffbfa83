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
RULES = ("simulate_catalog", "simulate_references", "build_windows", "pool_windows", "import_dataset", "build_dataset_windows", "forecast_dataset", "forecast_vae",
         "simulate_dataset_etas", "evaluate_dataset_etas", "train_vae",
         "apply_model", "evaluate_model", "invert_catalog", "invert_windows",
         "invert_model", "report_page", "summary")
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


PROFILE = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
GROUPS = sorted(set(PROFILE["groups"].values()))


def submissions(text: str) -> list[tuple[str, list[tuple[str, int, int, int]]]]:
    """[(rule or group, [(rule, threads, mem_mb, runtime) of each job in it])] from the job information
    Snakemake prints when it submits: a job block starts "rule X:" at the line start; a group job block
    starts "Group job G" and holds its jobs' blocks, indented."""
    out = []
    for chunk in re.split(r"\n(?=rule \w+:|\[[^\]\n]*\] Group job \w+)", text):
        head = re.match(r"rule (\w+):|\[[^\]\n]*\] Group job (\w+)", chunk)
        if not head or head.group(1) == "all":  # `all` runs in Snakemake itself ("localrule all:")
            continue
        members = []
        for block in re.split(r"\n(?=\s*rule \w+:)", chunk):
            rule = re.match(r"\s*rule (\w+):", block)
            resources = re.search(r"^\s+resources: (.*)$", block, re.M)
            if not rule or not resources:
                continue
            values = dict(item.split("=", 1) for item in resources.group(1).split(", "))
            threads = re.search(r"^\s+threads: (\d+)$", block, re.M)
            members.append((rule.group(1), int(threads.group(1)) if threads else 1, int(values["mem_mb"]),
                            int(values["runtime"])))
        out.append((head.group(1) or head.group(2), members))
    return out


def allocations() -> dict[str, list[dict[str, str]]]:
    """{rule or group: [scontrol's fields of each of its jobs]}; the plugin puts the name in the job comment:
    rule_<rule>[_wildcards_...] for a job, rule_<group>_<its rules> for a group job."""
    text = subprocess.run(["scontrol", "show", "job", "--oneliner"], capture_output=True, text=True, check=True).stdout
    return job_names(text)


def job_names(text: str) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list] = {}
    for line in text.splitlines():
        fields = dict(re.findall(r"(\S+?)=(\S*)", line))
        comment = fields["Comment"]
        group = next((g for g in GROUPS if comment.startswith(f"rule_{g}_")), None)
        name = group or next(r for r in RULES if re.fullmatch(rf"rule_{r}(_wildcards_.*)?", comment))
        out.setdefault(name, []).append(fields)
    return out


def minutes(limit: str) -> int:
    """scontrol's TimeLimit ([days-]hours:minutes:seconds) in minutes."""
    days, _, hms = limit.rpartition("-")
    h, m, s = (int(v) for v in hms.split(":"))
    return int(days or 0) * 1440 + h * 60 + m + (s > 0)


def test_whole_pipeline_runs_as_slurm_jobs_with_the_local_bytes(cluster, finished_run, tmp_path):
    # The default target only: the surrogate's rules are ordinary single jobs (test_workflow runs them), and
    # their SLURM round trips would cost the suite more than a minute.
    proc = run_snakemake(tmp_path, TINY, "all", "--workflow-profile", str(ROOT / "profiles" / "slurm"), "--jobs", "4",
        # Poll a small test cluster often; the profile keeps the plugin's cluster-friendly defaults.
        "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "2",
        timeout=1800)  # a guard against a job that never starts (about 5 minutes on 2 idle cores)
    text = proc.stdout + proc.stderr

    # Every job went through sbatch, the small ones in groups (profiles/slurm `groups`): one SLURM job per
    # planned submission, and every rule ran.
    jobs = allocations()
    planned = submissions(text)
    assert {rule for _, members in planned for rule, *_ in members} == set(RULES)
    assert sorted(jobs) == sorted({name for name, _ in planned}), (set(jobs), planned)
    # The tiny DAG's 43 jobs less `all` (a local rule), 42, in 14 submissions: one "config" group (2 configs x (3
    # simulations, windows, held-out catalog's inversion, held-out and training windows' inversion), the 2
    # configs' reference catalogs (one job each, a component of its own: nothing in the group needs them) and the
    # dataset's windows' inversion; group-components packs up to 5 components), the dataset's import and
    # windows, its held-out forecast (a job of its own), its ETAS fit's simulation of the held-out period and
    # that simulation's evaluation (two jobs of their own), the pooled windows, 4 trainings, two "model" groups (embedding, sampling, latent maps,
    # evaluation, page and, for a config's or the dataset's model, its inversion, for the dataset's model its
    # VAE forecast; 2 models each) and the summary.
    assert sum(len(v) for v in jobs.values()) == len(planned) == 14, {r: len(v) for r, v in jobs.items()}
    assert {g: len(jobs[g]) for g in GROUPS} == {"config": 1, "model": 2}
    assert sum(len(members) for _, members in planned) == 42
    assert all(j["JobState"] == "COMPLETED" for v in jobs.values() for j in v)

    # Each job got the cpus, memory and time limit Snakemake asked for (the profile's values where it sets
    # them); a group job at least what the largest of its jobs asks.
    asked: dict[str, set] = {}
    for name, members in planned:
        for rule, threads, mem_mb, runtime in members:
            asked.setdefault(rule, set()).add((threads, mem_mb, runtime))
    for rule, values in asked.items():
        assert len(values) == 1, (rule, values)
        (threads, mem_mb, runtime), = values
        if rule in PROFILE["set-resources"]:
            assert (mem_mb, runtime) == (PROFILE["set-resources"][rule]["mem_mb"], PROFILE["set-resources"][rule]["runtime"])
        if rule in PROFILE.get("set-threads", {}):
            assert threads == PROFILE["set-threads"][rule]
        for job in jobs.get(rule, []):
            got = (int(job["NumCPUs"]), int(job["CPUs/Task"]), job["MinMemoryNode"], minutes(job["TimeLimit"]))
            assert got == (threads, threads, f"{mem_mb}M", runtime), (rule, got)
    for group in GROUPS:
        members = [m for name, ms in planned if name == group for m in ms]
        need = (max(m[1] for m in members), max(m[2] for m in members), max(m[3] for m in members))
        for job in jobs[group]:
            cpus, mem, limit = int(job["CPUs/Task"]), int(job["MinMemoryNode"].rstrip("M")), minutes(job["TimeLimit"])
            assert cpus >= need[0] and mem >= need[1] and limit >= need[2], (group, (cpus, mem, limit), need)

    # The same bytes as the local run: catalogs, windows, models, embeddings, synthetic catalogs, metrics,
    # figures and pages.
    def files(root):   # the default target's outputs (the local run made the surrogate's too)
        return {str(p.relative_to(root)) for p in (root / "results").rglob("*")
                if p.is_file() and "surrogate" not in p.relative_to(root).parts[1:3]
                and not p.name.startswith("surrogate.")}

    assert files(tmp_path) == files(finished_run)
    compared = sorted(f for f in files(tmp_path) if f.split("/")[1] not in TIMING)
    assert any(f.endswith("model.pt") for f in compared) and any(f.endswith(".html") for f in compared)
    differ = [f for f in compared if (tmp_path / f).read_bytes() != (finished_run / f).read_bytes()]
    assert differ == [], differ
