"""The documentation keeps up with the code: every schema key has a row in docs/configuration.md, the
README stays short, its test command is the one CI runs, and relative links in the docs resolve."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
CONFIGURATION = ROOT / "docs" / "configuration.md"
README = ROOT / "README.md"
README_MAX_LINES = 200

# A row of the reference: | `dotted.key` | type and range | default | what it does |
ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|")
# A markdown link or image: [text](target) or ![alt](target); the target up to a space or ')'.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _resolve(node: dict, definitions: dict) -> dict:
    """The node with its $ref (to #/definitions/...) merged in."""
    if isinstance(node, dict) and "$ref" in node:
        merged = dict(definitions[node["$ref"].rsplit("/", 1)[-1]])
        merged.update({k: v for k, v in node.items() if k != "$ref"})
        return merged
    return node


def schema_keys(node: dict, definitions: dict, prefix: str = "") -> set[str]:
    """Every key the schema names, as docs/configuration.md names them: dotted paths; a key the user
    chooses (additionalProperties / patternProperties with a schema) is ``<name>``; the items of a list add
    ``[]`` to the list's key; alternatives (oneOf, anyOf, allOf) and $refs are walked as if inline."""
    node = _resolve(node, definitions)
    if not isinstance(node, dict):
        return set()
    keys: set[str] = set()
    children = [(name, child) for name, child in node.get("properties", {}).items()]
    children += [("<name>", child) for child in node.get("patternProperties", {}).values()]
    if isinstance(node.get("additionalProperties"), dict):
        children.append(("<name>", node["additionalProperties"]))
    for name, child in children:
        key = f"{prefix}.{name}" if prefix else name
        keys.add(key)
        keys |= schema_keys(child, definitions, key)
    if isinstance(node.get("items"), dict):
        keys |= schema_keys(node["items"], definitions, prefix + "[]")
    for combinator in ("oneOf", "anyOf", "allOf"):
        for branch in node.get(combinator, []):
            keys |= schema_keys(branch, definitions, prefix)
    return keys


def documented_keys() -> dict[str, list[str]]:
    """Key -> cells of its row, for every reference row of docs/configuration.md."""
    rows: dict[str, list[str]] = {}
    for line in CONFIGURATION.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in line.strip().strip("|").split("|")]
    return rows


def _schema() -> tuple[dict, dict]:
    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    return schema, schema.get("definitions", {})


def test_the_schema_walk_names_nested_chosen_and_list_item_keys():
    schema, definitions = _schema()
    keys = schema_keys(schema, definitions)
    # One of each naming rule, so that a walk that stops early cannot pass the coverage test with fewer keys.
    for key in ("seed", "windows.event.length", "etas.grid.K", "etas.configs[].name", "etas.configs[].<name>",
                "surrogate.holdout.<name>", "datasets.<name>.download.retries", "datasets.<name>.region.bbox"):
        assert key in keys, key
    assert not any(key.startswith("definitions") for key in keys)


def test_every_schema_key_has_a_row_in_the_configuration_reference():
    schema, definitions = _schema()
    missing = sorted(schema_keys(schema, definitions) - set(documented_keys()))
    assert not missing, (f"schema keys without a row in docs/configuration.md: {missing}; add "
                         "| `section.key` | type and allowed range | default | what it does |")


def test_every_row_of_the_configuration_reference_names_a_schema_key_and_has_four_cells():
    schema, definitions = _schema()
    rows = documented_keys()
    stale = sorted(set(rows) - schema_keys(schema, definitions))
    assert not stale, f"rows of docs/configuration.md for keys the schema does not have: {stale}"
    short = {key: cells for key, cells in rows.items() if len(cells) != 4 or not all(cells)}
    assert not short, f"rows without the four cells key | type and range | default | what it does: {short}"


def test_the_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"


def test_the_readme_test_command_is_the_one_ci_runs():
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    command = ci[-1].strip()
    assert command.startswith("python3 -m venv"), command
    assert command in README.read_text(encoding="utf-8").splitlines(), "README.md lacks .ci/run's command"


def _relative_links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)   # no links in code blocks
    targets = [m.group(1) for m in LINK.finditer(text)]
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]


def test_the_relative_links_of_the_readme_and_the_docs_resolve():
    pages = [README, *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "benchmarks").glob("*.md"))]
    assert _relative_links(README), "README.md links to no document"
    broken = [f"{page.relative_to(ROOT)}: {target}" for page in pages for target in _relative_links(page)
              if not (page.parent / target.split("#", 1)[0]).exists()]
    assert not broken, f"links to files that do not exist: {broken}"
