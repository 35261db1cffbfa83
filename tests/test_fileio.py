"""Outputs are written to a temporary name and renamed; the temporaries a killed job leaves are removed when
the job starts again, and no workflow script writes an output under its final name directly."""

import copy
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import yaml

from etasvae.config import etas_configs
from etasvae.fileio import remove_stale_temporaries, write_csv

ROOT = Path(__file__).resolve().parents[1]


def kill_during_write(path: Path) -> None:
    """A process that dies by SIGKILL half-way through atomic_write of ``path`` (as kill -9 of a job does)."""
    code = textwrap.dedent(f"""
        import os, signal
        from etasvae.fileio import atomic_write
        def half(tmp):
            open(tmp, "w").write("half")
            os.kill(os.getpid(), signal.SIGKILL)
        atomic_write({str(path)!r}, half)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr


def test_a_killed_write_leaves_only_a_temporary_which_the_next_start_removes(tmp_path):
    out = tmp_path / "interpolation.png"
    kill_during_write(out)
    assert not out.exists()
    (stale,) = [p for p in tmp_path.iterdir()]
    assert re.fullmatch(r"\.interpolation\.png\.[^.]+\.tmp", stale.name), stale.name
    # Temporaries of other files beside it, and the other files, are not this output's: they stay.
    other = tmp_path / ".interpolation.png.x.abcd1234.tmp"       # a temporary of "interpolation.png.x"
    other.write_text("")
    (tmp_path / "interpolation.png.abcd1234.tmp").write_text("")  # no leading dot: not a temporary
    (tmp_path / "tsne.png").write_text("done")
    assert remove_stale_temporaries([out]) == [stale]
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([other.name, "interpolation.png.abcd1234.tmp", "tsne.png"])


def test_stale_temporaries_inside_a_directory_output_are_removed(tmp_path):
    figures = tmp_path / "figures"
    kill_during_write(figures / "sub" / "pcf.png")
    (figures / "counts.png").write_text("done")
    removed = remove_stale_temporaries([figures, tmp_path / "metrics.json"])
    assert len(removed) == 1 and removed[0].name.startswith(".pcf.png.")
    assert sorted(p.name for p in figures.rglob("*") if p.is_file()) == ["counts.png"]


def test_write_csv_gives_the_bytes_of_to_csv_and_leaves_no_temporary(tmp_path):
    table = pd.DataFrame({"epoch": [1, 2], "val_loss": [0.5, 0.25]})
    write_csv(tmp_path / "history.csv", table)
    table.to_csv(tmp_path / "direct.csv", index=False)
    assert (tmp_path / "history.csv").read_bytes() == (tmp_path / "direct.csv").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["direct.csv", "history.csv"]


# A call that writes a file under the name it is given; in a rule script that name is an output's final name.
DIRECT_WRITE = re.compile(r"\.(to_csv|to_parquet|to_json|savefig|write_text|write_bytes)\(|\bopen\([^)]*['\"][wa]b?['\"]|torch\.save\(")


def test_no_workflow_script_writes_an_output_under_its_final_name():
    direct = []
    for script in sorted((ROOT / "workflow" / "scripts").glob("*.py")):
        for number, line in enumerate(script.read_text().splitlines(), 1):
            if DIRECT_WRITE.search(line) and "atomic_write(" not in line:
                direct.append(f"{script.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not direct, "write through etasvae.fileio (atomic_write, write_csv, write_json):\n" + "\n".join(direct)


def test_a_job_started_again_removes_the_temporaries_of_its_outputs(tmp_path):
    # The real workflow: a catalog job whose earlier start was killed before its rename left a temporary.
    from test_workflow import TINY

    config = copy.deepcopy(TINY)
    del config["datasets"]
    config["simulation"].update(duration_days=20, burn_in_days=5)
    config["etas"]["grid"]["mu"] = [1.0]
    (cfg,) = etas_configs(config)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    folder = tmp_path / "results" / "catalogs" / cfg
    folder.mkdir(parents=True)
    stale = folder / ".rep0.parquet.k1lled00.tmp"
    stale.write_text("")
    other = folder / ".rep1.parquet.k1lled00.tmp"   # another job's output: not this job's to remove
    other.write_text("")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(tmp_path / "config.yaml"), "--cores", "1", f"results/catalogs/{cfg}/rep0.parquet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert (folder / "rep0.parquet").exists() and not stale.exists() and other.exists()
    log = (tmp_path / "results" / "logs" / "simulate" / cfg / "rep0.log").read_text()
    assert f"removed {stale.relative_to(tmp_path)}, a temporary left by a killed run of this job" in log
