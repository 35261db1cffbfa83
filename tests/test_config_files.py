"""Reading configuration files strictly: duplicate keys, keys YAML does not read as names, recursive aliases
and alias bombs are refused with the file, line and key, by the library and by the workflow before any job."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from etasvae.config import MAX_CONFIG_VALUES, ConfigError, load_config_file

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, text, name="config.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", [ROOT / "config.yaml", ROOT / "config" / "dataset_example.yaml"])
def test_the_shipped_configs_read_as_yaml_reads_them(path):
    assert load_config_file(path) == yaml.safe_load(path.read_text())


def test_a_duplicate_key_is_refused_with_its_path_and_both_lines(tmp_path):
    path = write(tmp_path, "seed: 1\nvae:\n  grid:\n    K: [1]\n    beta: [1.0]\n    K: [2]\n")
    with pytest.raises(ConfigError) as err:
        load_config_file(path)
    assert str(err.value) == (f"{path}, line 6: vae.grid.K appears twice (first at line 4); YAML would keep "
                              "only the last one; list the key once")


def test_the_same_key_in_two_mappings_is_no_duplicate(tmp_path):
    path = write(tmp_path, "sample:\n  seed: 1\nevaluate:\n  seed: 2\n")
    assert load_config_file(path) == {"sample": {"seed": 1}, "evaluate": {"seed": 2}}


@pytest.mark.parametrize("text, line, shown, read_as", [
    ("seed: 1\non: 3\n", 2, "on", "the boolean True"),
    ("etas:\n  grid:\n    no: [1]\n", 3, "no", "the boolean False"),
    ("datasets:\n  1: {}\n", 2, "1", "the integer 1"),
    ("seed: 1\n~: 2\n", 2, "~", "null"),
])
def test_a_key_yaml_does_not_read_as_a_name_is_refused(tmp_path, text, line, shown, read_as):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config_file(path)
    text = str(err.value)
    assert text.startswith(f"{path}, line {line}: the key `{shown}` under ") and f"is read by YAML as {read_as}, " in text
    assert f'write it in quotes ("{shown}")' in text


def test_a_quoted_key_is_a_name(tmp_path):
    assert load_config_file(write(tmp_path, '"on": 1\n')) == {"on": 1}


def test_a_recursive_alias_is_refused_with_key_and_line(tmp_path):
    path = write(tmp_path, "seed: 1\nvae:\n  grid:\n    hidden: &h [32, *h]\n")
    with pytest.raises(ConfigError) as err:
        load_config_file(path)
    assert str(err.value).startswith(f"{path}, line 4: vae.grid.hidden[1] is a recursive alias")


def bomb(levels: int) -> str:
    """Each level lists the previous one ten times: 10**levels values in a few lines."""
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_the_first_key_beyond_the_cap(tmp_path):
    # 10**10 values: walking them would take hours; the node graph holds 10 distinct lists and is counted
    # once per node. l4 is the first to expand beyond 100,000 values (11 * 10**4 + ... = 111,111).
    assert MAX_CONFIG_VALUES == 100_000
    path = write(tmp_path, bomb(10))
    with pytest.raises(ConfigError) as err:
        load_config_file(path)
    assert str(err.value).startswith(f"{path}, line 5: l4 holds more than 100,000 values once its aliases are expanded")


def test_aliases_below_the_cap_and_merge_keys_are_read_as_yaml_reads_them(tmp_path):
    text = bomb(3) + "base: &base {a: 1, b: 2}\nmerged:\n  <<: *base\n  b: 3\n"
    path = write(tmp_path, text)
    assert load_config_file(path) == yaml.safe_load(text)
    assert load_config_file(path)["merged"] == {"a": 1, "b": 3}


def test_a_json_config_yaml_cannot_read_is_read_as_json_and_checked_for_duplicates(tmp_path):
    # A tab before a key is valid JSON and not valid YAML; Snakemake reads JSON first.
    assert load_config_file(write(tmp_path, '{\n\t"seed": 1\n}\n', "c.json")) == {"seed": 1}
    path = write(tmp_path, '{\n\t"seed": 1,\n\t"seed": 2\n}\n', "d.json")
    with pytest.raises(ConfigError, match=r"d\.json: the key 'seed' appears twice in one object"):
        load_config_file(path)


def test_a_file_that_is_no_mapping_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="must be a mapping of keys"):
        load_config_file(write(tmp_path, "- 1\n- 2\n"))


# ---- the workflow refuses them before any job ----------------------------------------------------------------


def dry_run(tmp_path, text):
    """snakemake -n on the tests' tiny config (without its dataset) with ``text`` appended to the file."""
    from test_workflow import TINY

    config = copy.deepcopy(TINY)
    del config["datasets"]   # its CSV is not needed to build the DAG of the ETAS configs
    path = write(tmp_path, yaml.safe_dump(config, sort_keys=False) + text)
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(path), "--cores", "1", "-n"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    return proc, path, len(path.read_text().splitlines())


@pytest.mark.parametrize("text, message", [
    ("seed: 5\n", "line {n}: seed appears twice (first at line 1)"),
    ("on: 1\n", "line {n}: the key `on` under (top level) is read by YAML as the boolean True"),
    ("extra: &a [*a]\n", "line {n}: extra[0] is a recursive alias"),
])
def test_the_workflow_refuses_a_bad_config_file_before_any_job(tmp_path, text, message):
    proc, path, n = dry_run(tmp_path, text)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"Invalid configuration: {path.resolve()}, {message.format(n=n)}" in out, out[-3000:]
    assert "Job stats" not in out and "RecursionError" not in out


def test_the_tiny_config_itself_passes_the_strict_reading(tmp_path):
    proc, _, _ = dry_run(tmp_path, "")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "Job stats" in proc.stdout + proc.stderr
