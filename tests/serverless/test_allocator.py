"""The functions' malloc setting (GLIBC_TUNABLES in serverless.yml), run for real: with it, a warm process renders a
progressive JPEG again without faulting libjpeg's coefficient buffers back in. glibc ignores a tunable it does not
know or a value it refuses without a word, so only the effect can show the setting works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests import images
else:
    import images

# Renders the photo three times in one process, as a warm Lambda does invocation after invocation, and reports the
# minor page faults of each render.
PROBE = """
import json, resource, sys
import kiray_imaging

photo = open(sys.argv[1], "rb").read()
faults = []
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    kiray_imaging.render(photo, "thumbnail")
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(faults))
"""


def page_faults(photo: Path, tunables: str | None) -> list[int]:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    if tunables is not None:
        env["GLIBC_TUNABLES"] = tunables
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(photo)], capture_output=True, text=True, check=True, env=env, timeout=120
    )
    faults: list[int] = json.loads(result.stdout)
    return faults


def test_a_warm_function_reuses_libjpegs_buffers(template: dict[str, Any], tmp_path: Path) -> None:
    settings = {
        name: r["Properties"]["Environment"]["Variables"].get("GLIBC_TUNABLES")
        for name, r in template["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["Handler"].startswith("py_handlers/")
    }
    assert len(settings) == 2, settings
    (tunables,) = set(settings.values())
    assert tunables, settings
    # 10 MP, 4:2:2 and progressive like the corpus's Wine photo: libjpeg holds 38 MB of coefficients, in three
    # buffers of 10-20 MB (measured: ~9,900 page faults per render in a warm process without the setting).
    photo = tmp_path / "progressive.jpg"
    photo.write_bytes(images.jpeg(images.noise((2560, 3840), seed=3), subsampling="4:2:2", progressive=True))
    tuned = page_faults(photo, tunables)
    if max(tuned[1:]) >= 200:
        # Only to say what the failure means: the same renders at glibc's defaults.
        pytest.fail(f"faults per render with {tunables}: {tuned}; without: {page_faults(photo, None)}")
