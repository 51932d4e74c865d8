"""A render's memory: a JPEG's rows go from the decoder straight into the resizer, so the decoded image is never
held whole (rust_core/src/row_resize.rs). Measured as the growth of a fresh process's peak RSS (VmHWM)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests import images
else:
    import images

# A fresh interpreter: reads the photo, renders a small JPEG first (so lazily loaded code and the allocator's first
# arenas are in the baseline), then reports the peak before and after rendering the photo's medium.
PROBE = """
import json, sys
import kiray_imaging

def peak_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

photo, small = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
kiray_imaging.render(small, "medium")
before = peak_kb()
r = kiray_imaging.render(photo, "medium")
print(json.dumps({"before": before, "after": peak_kb(), "shrink": r.shrink_on_load, "size": [r.width, r.height]}))
"""


def test_a_large_jpeg_is_never_held_decoded(tmp_path: Path) -> None:
    # 3800x3800 → medium 1280x1280 leaves too few source pixels per output pixel for a DCT shrink, so it is decoded
    # at full size: 43 MB as RGB, which the render used to hold (and its resizer a 15 MB intermediate). Baseline,
    # so libjpeg itself keeps only a few rows.
    side = 3800
    photo, small = tmp_path / "photo.jpg", tmp_path / "small.jpg"
    photo.write_bytes(images.jpeg(images.noise((side, side), seed=7), quality=90))
    small.write_bytes(images.jpeg(images.noise((300, 200), seed=8)))
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(photo), str(small)], capture_output=True, text=True, check=True, timeout=120
    )
    probe = json.loads(result.stdout)
    assert probe["shrink"] == 1
    assert probe["size"] == [1280, 1280]
    grown_mb = (probe["after"] - probe["before"]) / 1024
    decoded_mb = side * side * 3 / 2**20
    # What is left: the output and the encoder's buffers (~5 MiB each), a window of source rows, the resizer's own
    # (16 MiB in all, measured); holding the decoded image made it 60.
    assert grown_mb < 25, f"the render grew the peak by {grown_mb:.1f} MiB; the decoded image alone is {decoded_mb:.0f}"
