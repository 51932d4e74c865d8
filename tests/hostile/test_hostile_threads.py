"""Hostile uploads rendered at once: the GIL is released, and concurrent failures stay independent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests import images
    from tests.hostile import sandbox
else:
    import sandbox

    import images

if TYPE_CHECKING:
    from tests.hostile.hostile_checks import (
        DECODE,
        LIMIT,
        OK,
        UNSUPPORTED,
        arrow_jpeg,
        arrow_png,
    )
else:
    from hostile_checks import (
        DECODE,
        LIMIT,
        OK,
        UNSUPPORTED,
        arrow_jpeg,
        arrow_png,
    )


# --- the GIL is released, and concurrent failures stay independent -------------------------------------------------

_CONCURRENT = r"""
import threading

import kiray_imaging

paths = json.loads(sys.argv[1])
inputs = {name: open(path, "rb").read() for name, path in paths.items()}


def outcome(name):
    try:
        r = kiray_imaging.render(inputs[name], "thumbnail")
    except kiray_imaging.ImageError as e:
        return type(e).__name__
    return r.data


# 1. A long native render (the scan bomb, ~0.5 s before the limit stops it) must not hold the GIL: a Python thread
#    keeps ticking meanwhile.
ticks = []
stop = threading.Event()


def tick():
    while not stop.is_set():
        ticks.append(time.perf_counter())
        time.sleep(0.001)


ticker = threading.Thread(target=tick)
ticker.start()
time.sleep(0.05)
started = time.perf_counter()
long_kind = outcome("scan-bomb")
finished = time.perf_counter()
stop.set()
ticker.join()
during = [t for t in ticks if started <= t <= finished]
gaps = [b - a for a, b in zip([started, *during], [*during, finished])]

# 2. Failures that unwind through libjpeg (truncated, scan limit), limits and successes, on four threads at once,
#    must not disturb each other: every render gives what it gives alone, the good one byte for byte.
alone = {name: outcome(name) for name in inputs}
mismatches = []


def work(offset):
    names = sorted(inputs)
    for i in range(12):
        name = names[(i + offset) % len(names)]
        if outcome(name) != alone[name]:
            mismatches.append(name)


threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({
    "long_kind": long_kind if isinstance(long_kind, str) else "ok",
    "long_seconds": finished - started,
    "longest_gap": max(gaps),
    "alone": {n: (k if isinstance(k, str) else "ok") for n, k in alone.items()},
    "mismatches": mismatches,
    "peak_rss_kb": peak_rss_kb(),
}))
"""


def test_gil_is_released_and_concurrent_failures_stay_independent(tmp_path: Path) -> None:
    inputs = {
        "scan-bomb": images.progressive_scan_bomb(4000, 4000, 1),
        "truncated-jpeg": arrow_jpeg()[: len(arrow_jpeg()) // 2],
        "arithmetic-jpeg": images.jpeg_with_sof(arrow_jpeg(), 0xC9),
        "png-bomb": images.png_bomb(100_000, 100_000),
        "svg": b"<svg/>",
        "good-jpeg": arrow_jpeg(),
        "good-png": arrow_png(),
    }
    paths = {}
    for name, data in inputs.items():
        path = tmp_path / name
        path.write_bytes(data)
        paths[name] = str(path)
    report = sandbox.run_script(_CONCURRENT, json.dumps(paths))

    assert report["long_kind"] == LIMIT
    assert report["long_seconds"] > 0.2, "the scan bomb was too quick to show anything"
    # With the GIL held for the whole render the ticker would stall for all of it.
    assert report["longest_gap"] < report["long_seconds"] / 4, report
    assert report["alone"] == {
        "scan-bomb": LIMIT,
        "truncated-jpeg": DECODE,
        "arithmetic-jpeg": UNSUPPORTED,
        "png-bomb": LIMIT,
        "svg": UNSUPPORTED,
        "good-jpeg": OK,
        "good-png": OK,
    }
    assert report["mismatches"] == []
    assert report["peak_rss_kb"] * 1024 <= sandbox.MAX_RSS_BYTES
