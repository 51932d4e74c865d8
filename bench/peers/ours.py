"""Our core, through the same `kiray_imaging.render` call the handlers make."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path

import kiray_imaging
from bench.peers import Job, Outcome, Rendered, Skipped
from kiray_imaging import ImageError, UnsupportedFormatError, _core, render


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
            rendition = render(data, job.preset)
        except UnsupportedFormatError as e:
            return Skipped(f"UnsupportedFormatError: {e}", unsupported=True)
        except ImageError as e:
            return Skipped(f"{type(e).__name__}: {e}")
        ms = (time.perf_counter() - start) * 1000.0
        job.output.parent.mkdir(parents=True, exist_ok=True)
        job.output.write_bytes(rendition.data)
        return Rendered(data=rendition.data, width=rendition.width, height=rendition.height, ms=ms)
