"""The abi3 promise, shown rather than assumed: the one wheel imports and renders a real photo under every CPython
≥ 3.9 on this machine (pyenv's, the system's, the project's), with the same bytes out of each.

The wheel is unpacked and put first on sys.path, exactly as Lambda puts the layer's python/ folder; nothing is
installed into the interpreters. A free-threaded build (3.13t) is not an abi3 target and is left out.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PHOTO = ROOT / "demo" / "seeding_by_Clemens_Engelhardt_1600.jpg"

PROBE = "import json, platform, sys, sysconfig; print(json.dumps([platform.python_implementation(), \
list(sys.version_info[:3]), bool(sysconfig.get_config_var('Py_GIL_DISABLED'))]))"

RENDER = """
import hashlib, json, sys
sys.path.insert(0, sys.argv[1])
import kiray_imaging
from kiray_imaging import render, render_formats
photo = open(sys.argv[2], "rb").read()
thumb = render(photo, "thumbnail")
medium = render_formats(photo, "medium", ("jpeg", "webp"))
print(json.dumps({
    "module": kiray_imaging._core.__file__,
    "thumbnail": [thumb.width, thumb.height, thumb.content_type, hashlib.sha256(thumb.data).hexdigest()],
    "medium": [
        [r.width, r.height, r.content_type, hashlib.sha256(r.data).hexdigest()]
        for r in (medium["jpeg"], medium["webp"])
    ],
}))
"""


def cpython_interpreters() -> dict[str, Path]:
    """Every distinct CPython ≥ 3.9 (GIL build) found: pyenv's versions, pythonX.Y on PATH, the system's, ours."""
    pyenv = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates = [Path(p) for p in sorted(glob.glob(f"{pyenv}/versions/*/bin/python3"))]
    candidates += [Path(p) for n in range(9, 20) if (p := shutil.which(f"python3.{n}"))]
    candidates += [Path("/usr/bin/python3"), Path("/usr/local/bin/python3"), Path(sys.executable)]
    found: dict[str, Path] = {}
    seen: set[Path] = set()
    for exe in candidates:
        if not exe.is_file() or exe.resolve() in seen:
            continue
        seen.add(exe.resolve())
        probe = subprocess.run([str(exe), "-I", "-c", PROBE], capture_output=True, text=True, timeout=60)
        if probe.returncode != 0:
            continue
        implementation, version, free_threaded = json.loads(probe.stdout)
        if implementation == "CPython" and tuple(version[:2]) >= (3, 9) and not free_threaded:
            found.setdefault(".".join(map(str, version)), exe)
    return found


def test_the_wheel_renders_under_every_cpython_here(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "layer/build.py"], cwd=ROOT, check=True, capture_output=True)
    (wheel,) = (ROOT / "layer" / "build" / "wheels").glob("*.whl")
    unpacked = tmp_path / "python"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(unpacked)

    interpreters = cpython_interpreters()
    minors = {version.rsplit(".", 1)[0] for version in interpreters}
    # One interpreter would prove nothing about a stable ABI; this machine (and CI, the same image) has 3.9–3.13.
    assert len(minors) >= 2, f"need CPythons of at least two minor versions to test abi3, found {interpreters}"

    results = {}
    for version, exe in sorted(interpreters.items(), key=lambda item: tuple(map(int, item[0].split(".")))):
        run = subprocess.run(
            [str(exe), "-I", "-c", RENDER, str(unpacked), str(PHOTO)], capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 0, f"CPython {version} ({exe}):\n{run.stderr[-2000:]}"
        results[version] = json.loads(run.stdout)
        assert results[version]["module"] == str(unpacked / "kiray_imaging" / "_core.abi3.so")
        assert results[version]["thumbnail"][:3] == [400, 300, "image/jpeg"]
        assert [r[2] for r in results[version]["medium"]] == ["image/jpeg", "image/webp"]
        assert max(results[version]["medium"][0][:2]) == 1280

    print(f"abi3 wheel rendered under CPython {', '.join(results)}")  # shown with pytest -s
    outputs = {json.dumps({k: v for k, v in r.items() if k != "module"}) for r in results.values()}
    assert len(outputs) == 1, f"the same wheel gave different renditions under different Pythons: {results}"
