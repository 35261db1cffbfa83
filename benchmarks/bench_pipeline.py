"""Run the pipeline cold in a temporary copy and print per-rule time and peak memory.

    python benchmarks/bench_pipeline.py [--config config.yaml] [--cores 2] [--keep DIR] [--dry-run]
    python benchmarks/bench_pipeline.py --config benchmarks/config_10x.yaml     # ten times the data

The Snakefile, workflow/ and the config are copied into a fresh directory (or ``--keep DIR``, which is
kept) and ``snakemake --cores N`` runs there with the snakemake next to this Python, so nothing in the
working tree is touched. The table comes from Snakemake's benchmark files (``results/benchmarks/**.tsv``,
one per job): per rule the number of jobs, the total, median and largest wall seconds, the total CPU
seconds (``cpu_time``: steadier than wall seconds on a loaded machine) and the largest peak resident memory
(``max_rss``, MB). Below it: the run's wall time, the sum of the job times, and the
critical stages: the chain of jobs that ends last, each the latest-ending job that finished before the
next one started (from the benchmark files' times), i.e. what a shorter wall time has to shorten.
Figures depend on the machine and its load; the note beside a figure says which machine gave it.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("Snakefile", "workflow", "profiles", "envs")


@dataclass
class Job:
    rule: str
    name: str
    seconds: float
    max_rss_mb: float
    cpu_s: float
    end: float

    @property
    def start(self) -> float:
        return self.end - self.seconds


def prepare(workdir: Path, config: Path) -> None:
    """A copy of the workflow in ``workdir`` with ``config`` as its config.yaml (no results, no caches)."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        src = ROOT / name
        dst = workdir / name
        if dst.exists():
            shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, dst)
    shutil.copy2(config, workdir / "config.yaml")
    for stale in ("results", ".snakemake"):
        shutil.rmtree(workdir / stale, ignore_errors=True)


def read_jobs(results: Path) -> list[Job]:
    """One Job per benchmark file: rule = the stage folder under results/benchmarks, name = the rest."""
    jobs = []
    base = results / "benchmarks"
    for path in sorted(base.rglob("*.tsv")):
        rel = path.relative_to(base)
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        if not rows:
            continue
        row = rows[-1]
        jobs.append(Job(rule=rel.with_suffix("").parts[0], name=str(rel.with_suffix("")), seconds=float(row["s"]),
                        max_rss_mb=_number(row.get("max_rss")), cpu_s=_number(row.get("cpu_time")),
                        end=path.stat().st_mtime))
    return jobs


def _number(text: str | None) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def rule_table(jobs: list[Job]) -> str:
    by_rule: dict[str, list[Job]] = {}
    for job in jobs:
        by_rule.setdefault(job.rule, []).append(job)
    lines = [f"{'rule':<16}{'jobs':>5}{'total s':>10}{'median s':>10}{'max s':>9}{'CPU s':>9}{'max RSS MB':>12}"]
    order = sorted(by_rule, key=lambda r: -sum(j.seconds for j in by_rule[r]))
    for rule in order:
        group = by_rule[rule]
        secs = [j.seconds for j in group]
        rss = max(j.max_rss_mb for j in group)
        cpu = sum(j.cpu_s for j in group)
        lines.append(f"{rule:<16}{len(group):>5}{sum(secs):>10.1f}{statistics.median(secs):>10.1f}"
                     f"{max(secs):>9.1f}{cpu:>9.1f}{rss:>12.0f}")
    total = sum(j.seconds for j in jobs)
    cpu = sum(j.cpu_s for j in jobs)
    lines.append(f"{'all':<16}{len(jobs):>5}{total:>10.1f}{'':>10}{'':>9}{cpu:>9.1f}")
    return "\n".join(lines)


def critical_chain(jobs: list[Job], slack: float = 1.0) -> list[Job]:
    """From the last job back: each step the latest-ending job that ended before this one started (within
    ``slack`` seconds: Snakemake starts a job a moment after its input appears)."""
    if not jobs:
        return []
    chain = [max(jobs, key=lambda j: j.end)]
    while True:
        # ending before this one ends, too: two short jobs within ``slack`` of each other must not alternate
        before = [j for j in jobs if j.end <= chain[-1].start + slack and j.end < chain[-1].end]
        if not before:
            return chain[::-1]
        chain.append(max(before, key=lambda j: j.end))


def planned_dag(workdir: Path, snakemake: Path) -> list[dict]:
    """Every job of the workflow in ``workdir`` (a forced dry run): rule, threads, input and output files and
    benchmark file, from the job blocks Snakemake prints."""
    text = subprocess.run([str(snakemake), "-n", "--forceall", "--cores", "2"], cwd=workdir, capture_output=True,
                          text=True, check=True).stdout
    jobs = []
    for block in re.split(r"\n(?=\s*(?:local)?rule \w+:)", text):
        head = re.match(r"\s*(?:local)?rule (\w+):", block)
        if not head:
            continue
        fields = dict(re.findall(r"^\s+(input|output|benchmark|threads): (.*)$", block, re.M))
        jobs.append({"rule": head.group(1), "threads": int(fields.get("threads", 1)),
                     "input": set(fields.get("input", "").split(", ")) - {""},
                     "output": set(fields.get("output", "").split(", ")) - {""},
                     "benchmark": fields.get("benchmark")})
    return jobs


def projected_wall(dag: list[dict], seconds: dict[str, float], cores: int) -> tuple[float, list[str]]:
    """Wall time of the DAG on ``cores`` idle cores if each job took ``seconds[its benchmark file]`` (jobs
    without one: 0), scheduled greedily, longest remaining path first; and that longest path (job labels).

    Fed with each job's CPU seconds it estimates the run on an otherwise idle machine from a run on a busy
    one (CPU seconds barely depend on the load; wall seconds do)."""
    producer = {f: i for i, job in enumerate(dag) for f in job["output"]}
    deps = [{producer[f] for f in job["input"] if f in producer} for job in dag]
    cost = [seconds.get(job["benchmark"] or "", 0.0) for job in dag]
    children: list[set[int]] = [set() for _ in dag]
    for i, d in enumerate(deps):
        for j in d:
            children[j].add(i)
    tail: dict[int, float] = {}

    def remaining(i: int) -> float:  # longest path from the start of job i to the end of the DAG
        if i not in tail:
            tail[i] = cost[i] + max((remaining(c) for c in children[i]), default=0.0)
        return tail[i]

    sys.setrecursionlimit(max(10_000, 4 * len(dag)))
    path, i = [], max(range(len(dag)), key=lambda k: (not deps[k], remaining(k)))
    while True:
        path.append(f"{dag[i]['rule']} {cost[i]:.1f} s")
        if not children[i]:
            break
        i = max(children[i], key=remaining)
    clock, free, running, done = 0.0, cores, [], set()
    waiting = set(range(len(dag)))
    while waiting or running:
        ready = sorted((i for i in waiting if deps[i] <= done), key=remaining, reverse=True)
        for i in ready:
            need = min(dag[i]["threads"], cores)
            if need <= free:
                free -= need
                waiting.discard(i)
                running.append((clock + cost[i], i, need))
        running.sort()
        end, i, need = running.pop(0)
        clock, free = end, free + need
        done.add(i)
    return clock, path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="run in this directory and keep it (default: a temporary one)")
    parser.add_argument("--dry-run", action="store_true", help="plan only: print the job count and planning time")
    parser.add_argument("--snakemake-args", default="", help="extra arguments for snakemake, e.g. '--forceall'")
    args = parser.parse_args(argv)

    snakemake = Path(sys.executable).with_name("snakemake")
    if not snakemake.exists():  # e.g. snakemake installed apart from this Python's environment
        snakemake = Path(shutil.which("snakemake") or snakemake)
    workdir = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="etasvae-bench-"))
    prepare(workdir, args.config.resolve())
    cmd = [str(snakemake), *args.snakemake_args.split(), "--cores", str(args.cores), "--quiet", "rules",
           *(["--dry-run"] if args.dry_run else [])]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    print(f"config {args.config}; {args.cores} cores; in {workdir}", flush=True)
    load_before = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    done = subprocess.run(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.time() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    run_cpu = usage.ru_utime + usage.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime
    if done.returncode != 0:
        print(done.stdout[-4000:])
        print(f"snakemake failed (exit {done.returncode}) after {wall:.1f} s; files kept in {workdir}")
        return done.returncode
    if args.dry_run:
        print(done.stdout)
        print(f"planned in {wall:.1f} s")
    else:
        jobs = read_jobs(workdir / "results")
        print(rule_table(jobs))
        total = sum(j.seconds for j in jobs)
        print(f"\nwall time {wall:.1f} s ({wall / 60:.2f} min) on {args.cores} cores; job-time sum {total:.1f} s "
              f"({total / max(wall, 1e-9):.2f} jobs busy on average)")
        print(f"CPU seconds of the whole run (Snakemake and every job, from the OS): {run_cpu:.1f} s, at least "
              f"{run_cpu / args.cores:.1f} s of wall time on {args.cores} cores")
        print(f"machine load average (1 min) {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
              f"on {os.cpu_count()} CPUs: other processes' load slows every job")
        print("critical stages (the chain of jobs that ended last; start..end s after the run began):")
        for job in critical_chain(jobs):
            print(f"  {job.name:<48}{job.start - started:>8.1f}..{job.end - started:<8.1f}{job.seconds:>7.1f} s")
        dag = planned_dag(workdir, snakemake)
        cpu = {f"results/benchmarks/{j.name}.tsv": j.cpu_s for j in jobs}
        wall_cpu, path = projected_wall(dag, cpu, args.cores)
        print(f"projected wall time on {args.cores} idle cores (each job its CPU seconds, scheduled over the DAG): "
              f"{wall_cpu:.1f} s ({wall_cpu / 60:.2f} min)")
        print("  longest path in CPU seconds: " + " -> ".join(path))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
