"""`kiray-imaging batch SRC_DIR DEST_DIR` as a process, on real photos from the corpus: what lands in DEST_DIR, the
summary, failures, the progress bar (on a terminal only), and the worker pool underneath."""

from __future__ import annotations

import hashlib
import os
import pty
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import cast

import pytest
import yaml  # type: ignore[import-untyped]
from PIL import Image

from kiray_imaging.output_keys import version_token
from kiray_imaging.presets import DEPLOYED_FORMATS
from kiray_imaging.progress import Progress, bounded_map

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "kiray_imaging", "batch"]
PHOTOS = {  # corpus file → where it goes under SRC_DIR
    "Dragonfly_by_Bolly.jpg": "l1/Dragonfly_by_Bolly.jpg",
    "derived_wine_alpha.png": "l1/kitchen/wine.png",
    "derived_dragonfly_q85.webp": "l2/dragonfly.webp",
}


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def photos(corpus: Path, tmp_path: Path) -> Path:
    src = tmp_path / "photos"
    for name, where in PHOTOS.items():
        (src / where).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(corpus / name, src / where)
    (src / "l2" / "broken.jpg").write_bytes((corpus / "Wine_by_Jakub_Mede.jpg").read_bytes()[:2000])  # truncated
    (src / "l2" / "notes.txt").write_text("not an image, not taken")
    (src / "l1" / ".hidden.jpg").write_bytes(b"a hidden file, not taken")
    return src


def test_renders_every_image_as_deployed_and_summarises(photos: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    result = run(photos, dest, "--workers", "2")

    assert result.returncode == 1, result.stderr  # one file failed
    outputs = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    # Laid out as the bucket: a folder per upload (its whole name), a file per version (the token S3 would give
    # these bytes: the start of their MD5).
    token = {where: version_token(hashlib.md5((photos / where).read_bytes()).hexdigest()) for where in PHOTOS.values()}
    stems = [f"{where}/{token[where]}" for where in PHOTOS.values()]
    # Every photo here fills 800x600: each thumbnail has its @2x file beside it.
    assert outputs == sorted(
        [f"thumbnail/{s}{x}.jpg" for s in stems for x in ("", "@2x")]
        + [f"medium/{s}.{ext}" for s in stems for ext in ("jpg", "webp")]
    )
    for s in stems:
        assert Image.open(dest / f"thumbnail/{s}.jpg").size == (400, 300)
        assert Image.open(dest / f"thumbnail/{s}@2x.jpg").size == (800, 600)
        with Image.open(dest / f"medium/{s}.webp") as medium:
            assert medium.format == "WEBP"
            assert max(medium.size) <= 1280
    taken = [photos / where for where in PHOTOS.values()] + [photos / "l2" / "broken.jpg"]
    bytes_in = sum(p.stat().st_size for p in taken)
    bytes_out = sum((dest / o).stat().st_size for o in outputs)
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        "files: 4, rendered 3, failed 1",
        "failures: DecodeError 1",
        f"bytes: in {bytes_in} ({bytes_in / 2**20:.1f} MiB), out {bytes_out} ({bytes_out / 2**20:.1f} MiB) "
        "in 12 renditions",
    ]
    assert re.fullmatch(r"time: \d+\.\d\d s wall, 2 workers, \d+\.\d files/s", lines[3]), lines[3]
    assert len(lines) == 4
    # The failure, once, as it happened; no progress bar drawn into a pipe.
    assert result.stderr.startswith(f"error: {photos}/l2/broken.jpg: DecodeError: JPEG: ")
    assert result.stderr.count("\n") == 1
    assert "\r" not in result.stderr


def test_all_good_exits_0_and_dest_inside_src_is_not_read_back(photos: Path) -> None:
    (photos / "l2" / "broken.jpg").unlink()
    dest = photos / "renditions"
    first = run(photos, dest)
    second = run(photos, dest)
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    # The second run found the same three photos, not the nine renditions of the first.
    assert first.stdout.splitlines()[0] == second.stdout.splitlines()[0] == "files: 3, rendered 3, failed 0"
    assert first.stdout.splitlines()[1] == "failures: none"


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    missing = run(tmp_path / "nope", tmp_path / "out")
    assert missing.returncode == 2
    assert missing.stderr == f"error: NotADirectoryError: SRC_DIR {tmp_path / 'nope'} is not a directory\n"
    workers = run(tmp_path, tmp_path / "out", "--workers", "0")
    assert workers.returncode == 2
    assert "argument --workers: expected ≥ 1, got 0" in workers.stderr


def test_the_progress_bar_is_drawn_on_a_terminal(photos: Path, tmp_path: Path) -> None:
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run([*CLI, str(photos), str(tmp_path / "out")], stdout=subprocess.PIPE, stderr=secondary,
                              timeout=300, check=False)  # fmt: skip
        os.close(secondary)
        drawn = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(primary)
    assert proc.returncode == 1
    text = drawn.decode()
    assert re.search(r"\r\[#{30}\] 4/4 files  \d+\.\d/s  0:00 left", text), text
    assert "error: " in text


def test_progress_draws_nothing_off_a_terminal() -> None:
    class Pipe:
        written = ""

        def isatty(self) -> bool:
            return False

        def write(self, text: str) -> None:
            self.written += text

        def flush(self) -> None:
            pass

    pipe = Pipe()
    progress = Progress(3, "files", pipe)  # type: ignore[arg-type]
    for _ in range(3):
        progress.advance()
    progress.close()
    assert pipe.written == ""


def test_the_pool_is_bounded_and_returns_every_item() -> None:
    running = peak = 0
    lock = threading.Lock()

    def work(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.002)
        with lock:
            running -= 1
        return n * n

    consumed = []

    def items() -> Iterator[int]:
        for n in range(200):
            consumed.append(n)
            yield n

    results = dict(bounded_map(work, items(), 3))
    assert results == {n: n * n for n in range(200)}
    assert peak == 3


def test_the_pool_never_reads_far_ahead_of_the_workers() -> None:
    read = []

    def items() -> Iterator[int]:
        for n in range(100):
            read.append(n)
            yield n

    stream = cast(Generator[tuple[int, int], None, None], bounded_map(lambda n: n, items(), 2))
    next(stream)
    assert len(read) <= 5  # 2 × workers submitted, plus the one that replaced the first result
    stream.close()


class _CfnLoader(yaml.SafeLoader):  # type: ignore[misc]
    """serverless.yml with its CloudFormation tags (!Ref, !GetAtt, …) read as None."""


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def test_batch_renders_what_the_functions_are_deployed_to_render() -> None:
    functions = yaml.load((ROOT / "serverless.yml").read_text(), Loader=_CfnLoader)["functions"]
    deployed = {name.removeprefix("generate-"): tuple(f["environment"]["OUTPUT_FORMAT"].split(","))
                for name, f in functions.items()}  # fmt: skip
    assert deployed == DEPLOYED_FORMATS
