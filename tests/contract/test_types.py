"""The TypeScript side of the contract: index.d.ts is what the generator makes of the schemas, the package ships what
the backend needs, and tsc --strict accepts a real consumer and refuses wrong ones."""

from __future__ import annotations

import difflib
import re
import subprocess
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.contract.node_tools import CONTRACT, NPM_ENV
else:
    from node_tools import CONTRACT, NPM_ENV

WRONG = Path(__file__).resolve().parent / "wrong"
# What the backend's tsconfig might be: both module resolutions TypeScript offers for a package, and the strictest
# checks a project commonly turns on beside --strict.
RESOLUTIONS = {
    "nodenext": ["--module", "nodenext", "--moduleResolution", "nodenext"],
    "bundler": ["--module", "esnext", "--moduleResolution", "bundler"],
}
STRICT = ["--strict", "--noUncheckedIndexedAccess", "--exactOptionalPropertyTypes", "--noEmit", "--pretty", "false"]
# tsc's one-line diagnostics: "file.ts(8,27): error TS2339: Property 'files' does not exist on type …"
DIAGNOSTIC = re.compile(r"^(?P<file>[^()\s]+)\((?P<line>\d+),\d+\): error (?P<code>TS\d+): ", re.MULTILINE)
MARKER = re.compile(r"// tsc: (?P<code>TS\d+)$")


def tsc(node_modules: Path, project: Path, files: list[str], resolution: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(node_modules / ".bin" / "tsc"), *STRICT, *RESOLUTIONS[resolution], *files],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_index_d_ts_is_what_the_generator_makes_of_the_schemas(node_modules: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "index.d.ts"
    # As contract/README.md says to regenerate, into a temporary file.
    subprocess.run(
        ["npm", "run", "--silent", "generate", "--", "--out", str(fresh)],
        cwd=CONTRACT,
        env=NPM_ENV,
        check=True,
        timeout=300,
    )
    committed = CONTRACT / "index.d.ts"
    if fresh.read_bytes() != committed.read_bytes():
        diff = difflib.unified_diff(
            committed.read_text().splitlines(), fresh.read_text().splitlines(), "index.d.ts", "generated", lineterm=""
        )
        pytest.fail("contract/index.d.ts is out of date: run `npm run generate` in contract/\n" + "\n".join(diff))


def test_the_package_ships_the_types_and_every_schema(packed: Path) -> None:
    with tarfile.open(packed) as tar:
        shipped = {name.removeprefix("package/") for name in tar.getnames()}
    schemas = {f"schemas/{p.name}" for p in (CONTRACT / "schemas").glob("*.json")}
    assert shipped == {"package.json", "README.md", "index.d.ts", *schemas}


@pytest.mark.parametrize("resolution", sorted(RESOLUTIONS))
def test_a_consumer_and_the_readme_example_compile_strictly(
    node_modules: Path, consumer_project: Path, resolution: str
) -> None:
    readme = sorted(p.name for p in consumer_project.glob("readme_*.ts"))
    assert readme, "contract/README.md has no ts example"
    result = tsc(node_modules, consumer_project, ["consumer.ts", *readme], resolution)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("resolution", sorted(RESOLUTIONS))
def test_wrong_consumers_are_refused_exactly_where_they_are_wrong(
    node_modules: Path, consumer_project: Path, resolution: str
) -> None:
    expected = set()
    for ts in sorted(WRONG.glob("*.ts")):
        marked = [
            (ts.name, n, m["code"])
            for n, line in enumerate(ts.read_text().splitlines(), 1)
            if (m := MARKER.search(line))
        ]
        assert marked, f"{ts.name} marks no line that tsc must refuse"
        expected.update(marked)
    result = tsc(node_modules, consumer_project, sorted({name for name, _, _ in expected}), resolution)
    found = {(m["file"], int(m["line"]), m["code"]) for m in DIAGNOSTIC.finditer(result.stdout)}
    assert result.returncode != 0
    assert found == expected, result.stdout
