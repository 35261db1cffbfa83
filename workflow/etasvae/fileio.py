"""Files: atomic writes, and the one home of turning Python, numpy and pandas values into plain JSON
(and torch-safe) values."""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

TMP_SUFFIX = ".tmp"


def _temporary_name(name: str) -> re.Pattern:
    """The names atomic_write gives the temporaries of a file ``name``: ``.{name}.{random}.tmp``, where
    tempfile's random part has no dot (so the temporaries of ``a.png.x`` never match those of ``a.png``)."""
    return re.compile(rf"^\.{re.escape(name)}\.[^./]+{re.escape(TMP_SUFFIX)}$")


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``: no half-written file ever carries the final name.
    The temporary is ``.{name}.{random}.tmp`` beside ``path``; a process killed before the rename leaves it
    behind, and remove_stale_temporaries removes it when the job that writes ``path`` starts again."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are ordinary readable files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remove_stale_temporaries(outputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Remove the temporaries that atomic_write left for ``outputs`` when a killed job never renamed them
    (for a directory output, every such temporary inside it); returns what was removed. Called when a job
    starts: Snakemake lets one job at a time write an output, so a temporary of it found then is a dead job's."""
    removed = []
    for output in outputs:
        path = Path(output)
        found: list[Path] = []
        if path.parent.is_dir():
            pattern = _temporary_name(path.name)
            found += [e for e in path.parent.iterdir() if pattern.match(e.name)]
        if path.is_dir():
            found += [Path(root) / name for root, _, names in os.walk(path) for name in names
                      if name.startswith(".") and name.endswith(TMP_SUFFIX)]
        for entry in found:
            if entry.is_file():
                entry.unlink(missing_ok=True)
                removed.append(entry)
    return removed


def write_csv(path: str | os.PathLike, table: pd.DataFrame) -> None:
    """Write a table as CSV (no index), atomically."""
    atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))


def to_jsonable(obj: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays, pandas objects, tuples, sets and paths converted;
    NaN and ±inf become None (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, pd.DataFrame):
        return [to_jsonable(r) for r in obj.to_dict(orient="records")]
    if isinstance(obj, pd.Series):
        return to_jsonable(obj.to_dict())
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if obj is None or obj is pd.NaT or obj is pd.NA:
        return None
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    return obj


def plain(value: Any) -> Any:
    """Plain Python containers and scalars, NaN kept (what torch.load(weights_only=True) accepts)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def json_default(value: Any) -> Any:
    """``default=`` for json.dumps of file metadata: numpy scalars and arrays as plain values."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in file metadata")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON (see to_jsonable), atomically."""
    text = json.dumps(to_jsonable(obj), indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    write_text(path, text)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a UTF-8 text file atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
