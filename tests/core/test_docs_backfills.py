"""docs/backfills.md stays true: every `kiray-imaging` command in it is run (the S3 ones against moto, seeded with
the photos the page talks about), the create-job script on the page is exactly what the CLI prints, and the sample
summaries match what the commands print (but for timings and the encoder's exact output bytes)."""

from __future__ import annotations

import io
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "backfills.md"
BUCKET = "kiray-imaging-dev-photos"
SEEDED = ("uploads/l42/front.jpg", "uploads/l42/kitchen.jpg", "uploads/l43/garden view.jpg")


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", DOC.read_text(), flags=re.M | re.S)


def commands() -> list[str]:
    return [line for block in blocks("sh") for line in block.splitlines() if line.startswith("kiray-imaging ")]


def run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    words = shlex.split(command)
    out = None
    if ">" in words:
        words, out = words[: words.index(">")], words[words.index(">") + 1]
    result = subprocess.run([sys.executable, "-m", "kiray_imaging", *words[1:]], capture_output=True, text=True,
                            cwd=cwd, timeout=300, check=False)  # fmt: skip
    if out is not None:
        (cwd / out).write_text(result.stdout)
    return result


@pytest.fixture
def bucket(local_aws: str) -> Any:
    """The bucket the page's examples were printed from: three photos and a folder marker."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    photo = io.BytesIO()
    Image.new("RGB", (1600, 1200), (30, 120, 200)).save(photo, "JPEG", quality=90)
    for key in SEEDED:
        s3.put_object(Bucket=BUCKET, Key=key, Body=photo.getvalue())
    s3.put_object(Bucket=BUCKET, Key="uploads/l43/", Body=b"")
    return s3


def test_the_page_has_the_commands_it_is_tested_for() -> None:
    assert [shlex.split(c)[1] for c in commands()] == ["backfill", "backfill", "batch", "backfill", "backfill"]


def test_the_manifest_command_prints_the_script_on_the_page(bucket: Any, tmp_path: Path) -> None:
    (command,) = [c for c in commands() if "--manifest-out" in c]
    result = run(command, tmp_path)
    assert result.returncode == 0, result.stderr
    (script,) = [b for b in blocks("sh") if b.startswith("#!/bin/sh")]
    assert (tmp_path / "start-backfill.sh").read_text() == script
    assert (tmp_path / "backfill-manifest.csv").read_text().splitlines()[
        -1
    ] == f"{BUCKET},uploads/l43/garden%20view.jpg"


def without_times(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("time: ")]


def test_the_local_command_prints_the_summary_on_the_page(bucket: Any, tmp_path: Path) -> None:
    (command,) = [c for c in commands() if "--local" in c]
    result = run(command, tmp_path)
    assert result.returncode == 0, result.stderr
    (sample,) = [b for b in blocks("text") if b.startswith("photos: ")]
    assert without_times(result.stdout) == without_times(sample)
    assert result.stdout.splitlines()[-1].endswith(sample.splitlines()[-1].split(" s wall")[1])
    listed = [o["Key"] for o in bucket.list_objects_v2(Bucket=BUCKET, Prefix="renditions/")["Contents"]]
    # Three photos: a thumbnail and its @2x, a medium JPEG and WebP each.
    assert len([k for k in listed if not k.endswith("/current.json")]) == 12
    assert len([k for k in listed if k.endswith("/current.json")]) == 6  # one per photo and function


def test_the_batch_command_on_the_corpus_prints_the_summary_on_the_page(corpus: Path, tmp_path: Path) -> None:
    (command,) = [c for c in commands() if c.startswith("kiray-imaging batch ")]
    shutil.copytree(corpus, tmp_path / "photos")
    result = run(command, tmp_path)
    assert result.returncode == 1  # the corpus's HEIC
    (sample,) = [b for b in blocks("text") if "files: " in b]
    page = sample.splitlines()
    errors = [line.replace("../shared/corpus/", "photos/") for line in page if line.startswith("error: ")]
    assert sorted(result.stderr.splitlines()) == sorted(errors)
    printed = result.stdout.splitlines()
    summary = [line for line in page if not line.startswith("error: ")]
    assert printed[:2] == summary[:2]
    # The input bytes are the corpus's; the output bytes are the encoder's of the day, so only their shape.
    assert printed[2].split(", out ")[0] == summary[2].split(", out ")[0]
    assert re.fullmatch(r"bytes: in \d+ \(.*\), out \d+ \(\d+\.\d MiB\) in 38 renditions", printed[2]), printed[2]
    assert re.fullmatch(r"time: \d+\.\d\d s wall, 2 workers, \d+\.\d files/s", printed[3]), printed[3]
    made = [p for p in (tmp_path / "renditions").rglob("*") if p.is_file()]
    assert sorted(p.relative_to(tmp_path / "renditions").parts[0] for p in made) == ["medium"] * 20 + ["thumbnail"] * 18
    # Every photo but the GIF (245x245) and the AVIF (640x427) fills 800x600: 8 @2x thumbnails.
    assert len([p for p in made if p.name.endswith("@2x.jpg")]) == 8


def test_the_orphan_sweep_commands_list_then_delete(bucket: Any, tmp_path: Path) -> None:
    # Run as the page gives them, after a --local backfill and with a rendition of the old scheme left over. Its
    # default minimum age (an hour) keeps everything written just now: what the sweep finds on older keys is
    # tests/handlers/test_orphans.py's.
    (local,) = [c for c in commands() if "--local" in c]
    assert run(local, tmp_path).returncode == 0
    bucket.put_object(Bucket=BUCKET, Key="renditions/thumbnail/l42/front.jpg", Body=b"the old scheme")
    listing, deleting = [c for c in commands() if "--orphans" in c]
    listed = run(listing, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "orphans: legacy: 0" in listed.stdout
    assert "kept: too recent to judge 19" in listed.stdout, listed.stdout
    assert "--delete" in deleting
    deleted = run(deleting, tmp_path)
    assert deleted.returncode == 0, deleted.stderr
    assert "deleted: 0 keys" in deleted.stdout
