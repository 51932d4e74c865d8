"""Our core, through the calls the functions make: `kiray_imaging.render`, and for a preset's ``@2x`` file
(`bench.quality.with_high_density`) `render_upload`, which makes it from the decode the 1x file takes."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import kiray_imaging
from bench.peers import Job, Outcome, Rendered, Skipped
from kiray_imaging import ImageError, Rendition, UnsupportedFormatError, _core, render, render_upload
from kiray_imaging.presets import PRESETS, Preset

HIGH_DENSITY = "@2x"
"""The name suffix of a high-density job: "thumbnail@2x" is the thumbnail preset's scale-2 file."""


class Ours:
    name = "ours"

    def versions(self) -> dict[str, str]:
        # The version number does not move while the core is being worked on; the binary's hash tells two reports
        # of different builds apart.
        binary = Path(_core.__file__ or "")
        build = hashlib.sha256(binary.read_bytes()).hexdigest()[:12] if binary.is_file() else "unknown"
        simd = kiray_imaging.simd_level()
        return {"kiray_imaging": f"{kiray_imaging.__version__} (_core sha256 {build}…, SIMD {simd})"}

    def render_all(self, jobs: Sequence[Job]) -> list[Outcome]:
        return [self.render(job) for job in jobs]

    def render(self, job: Job) -> Outcome:
        data = job.source.read_bytes()
        start = time.perf_counter()
        try:
            rendition = _rendition(data, job.preset)
        except UnsupportedFormatError as e:
            return Skipped(f"UnsupportedFormatError: {e}", unsupported=True)
        except ImageError as e:
            return Skipped(f"{type(e).__name__}: {e}")
        ms = (time.perf_counter() - start) * 1000.0
        if rendition is None:
            return Skipped("no @2x file, the photo is smaller than twice the box", not_made=True)
        job.output.parent.mkdir(parents=True, exist_ok=True)
        job.output.write_bytes(rendition.data)
        return Rendered(data=rendition.data, width=rendition.width, height=rendition.height, ms=ms)


def _rendition(data: bytes, preset: Preset) -> Rendition | None:
    if not preset.name.endswith(HIGH_DENSITY):
        return render(data, preset)
    # The time then covers the 1x file too: the function makes both from one decode, and cannot make one alone.
    base = replace(PRESETS[preset.name.removesuffix(HIGH_DENSITY)], quality=preset.quality)
    return render_upload(data, base, ("jpeg",)).files.get((2, "jpeg"))
