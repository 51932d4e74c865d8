"""`kiray_imaging.render` from several threads: the same bytes as one at a time, with the GIL released."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from kiray_imaging import (
    render,
)

if TYPE_CHECKING:
    from tests import images
else:
    import images

if TYPE_CHECKING:
    from tests.core.render_checks import (
        PRESET_NAMES,
    )
else:
    from render_checks import (
        PRESET_NAMES,
    )


# --- concurrency ------------------------------------------------------------------------------------------------


def test_concurrent_renders_match_a_sequential_one() -> None:
    # Large and detailed, so two renders overlap in the native code (the GIL is released there) and any shared
    # mutable state between them would change bytes.
    data = images.jpeg(images.noise((3000, 2000)), quality=90)
    expected = {name: render(data, name).data for name in PRESET_NAMES}
    assert render(data, "thumbnail").data == expected["thumbnail"], "a render is not deterministic"

    barrier = threading.Barrier(2)
    results: dict[str, list[bytes]] = {name: [] for name in PRESET_NAMES}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            barrier.wait()
            for _ in range(3):
                results[name].append(render(data, name).data)
        except BaseException as e:  # surfaced below; an exception in a thread would otherwise be lost
            errors.append(e)

    threads = [threading.Thread(target=work, args=(name,)) for name in PRESET_NAMES]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    for name in PRESET_NAMES:
        assert results[name] == [expected[name]] * 3, name


def test_the_gil_is_released_while_rendering() -> None:
    # Another Python thread can only run inside a render's time span if the core let go of the GIL; holding it, the
    # native call would freeze every other thread for its whole duration (the batch CLI's worker pool relies on it).
    data = images.jpeg(images.noise((3000, 2000)), quality=90)
    done = threading.Event()
    ticks: list[float] = []

    def tick() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    ticker = threading.Thread(target=tick)
    ticker.start()
    spans = []
    try:
        for _ in range(3):
            started = time.perf_counter()
            render(data, "medium")
            spans.append((started, time.perf_counter()))
    finally:
        done.set()
        ticker.join()
    for started, ended in spans:
        # The middle half of the span: well clear of the Python code just before and after the native call.
        quarter = (ended - started) / 4
        inside = [t for t in ticks if started + quarter < t < ended - quarter]
        assert inside, f"no other thread ran during a {(ended - started) * 1000:.0f} ms render"
