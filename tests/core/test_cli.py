"""The `kiray-imaging` command, run as a real process both ways it is installed: `python -m kiray_imaging` and the
console script. What a caller relies on: exit status, one parseable error line, and no file at DEST on failure."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests import images
else:
    import images

CONSOLE_SCRIPT = Path(sys.executable).parent / "kiray-imaging"
ENTRY_POINTS = {
    "module": [sys.executable, "-m", "kiray_imaging"],
    "script": [str(CONSOLE_SCRIPT)],
}


@pytest.fixture(params=sorted(ENTRY_POINTS))
def cli(request: pytest.FixtureRequest) -> list[str]:
    command: list[str] = ENTRY_POINTS[request.param]
    if request.param == "script":
        # Installing the wheel must install the script; a missing one is a packaging bug, not a reason to skip.
        assert CONSOLE_SCRIPT.is_file(), f"{CONSOLE_SCRIPT} is not installed"
    return command


def run(
    cli: list[str], *args: str | Path, cwd: Path | None = None, umask: int = -1
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cli, *map(str, args)], capture_output=True, text=True, timeout=60, check=False, cwd=cwd, umask=umask
    )


def assert_one_error_line(result: subprocess.CompletedProcess[str], prefix: str) -> None:
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(prefix), lines[0]
    # The shape scripts parse: the exception class, then a non-empty reason.
    assert re.fullmatch(r"error: [A-Za-z]+Error: \S.*", lines[0]), lines[0]


@pytest.mark.parametrize(("preset", "size"), [("thumbnail", (400, 300)), ("medium", (1280, 800))])
def test_renders_a_file(cli: list[str], tmp_path: Path, preset: str, size: tuple[int, int]) -> None:
    src = tmp_path / "in.png"
    src.write_bytes(images.png(images.arrow_picture((1600, 1000))))
    dest = tmp_path / "out.jpg"

    result = run(cli, "render", src, "--preset", preset, "--format", "jpeg", "-o", dest)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == f"{dest}: {size[0]}x{size[1]} jpeg, {dest.stat().st_size} bytes (from png 1600x1000)\n"
    out = images.decode(dest.read_bytes())
    assert (out.format, out.size) == ("JPEG", size)
    # The atomic write leaves no temporary file behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out.jpg"]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)], ids=["umask-022", "umask-027"])
def test_dest_gets_the_usual_file_mode(cli: list[str], tmp_path: Path, umask: int, mode: int) -> None:
    # Renditions get published or served: DEST must not keep the owner-only mode of the temporary file.
    (tmp_path / "in.png").write_bytes(images.png(images.arrow_picture((64, 48))))

    result = run(cli, "render", "in.png", "--preset", "thumbnail", "-o", "out.jpg", cwd=tmp_path, umask=umask)

    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((tmp_path / "out.jpg").stat().st_mode) == mode


def test_format_defaults_to_jpeg(cli: list[str], tmp_path: Path) -> None:
    src = tmp_path / "in.jpg"
    src.write_bytes(images.jpeg(images.arrow_picture((200, 100))))
    dest = tmp_path / "out.jpg"

    result = run(cli, "render", src, "--preset", "thumbnail", "-o", dest)

    assert result.returncode == 0, result.stderr
    assert images.decode(dest.read_bytes()).size == (133, 100)


@pytest.mark.parametrize(
    ("content", "error"),
    [
        pytest.param(b"", "error: DecodeError: input is empty", id="empty"),
        pytest.param(b"\xff\xd8\xff", "error: DecodeError: JPEG: ", id="jpeg-magic-only"),
        pytest.param(
            images.png(images.arrow_picture((300, 200)))[:300], "error: DecodeError: PNG: ", id="truncated-png"
        ),
        pytest.param(b"<html><body>not a photo</body></html>", "error: UnsupportedFormatError: HTML", id="html"),
        pytest.param(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic", "error: UnsupportedFormatError: HEIF/HEIC", id="heic"),
        pytest.param(images.png_bomb(100_000, 100_000), "error: LimitExceededError: image is 100000x100000", id="bomb"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(cli: list[str], tmp_path: Path, content: bytes, error: str) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(content)
    dest = tmp_path / "out.jpg"

    result = run(cli, "render", src, "--preset", "thumbnail", "-o", dest)

    assert_one_error_line(result, error)
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.bin"]


def test_bad_input_leaves_an_existing_dest_alone(cli: list[str], tmp_path: Path) -> None:
    src = tmp_path / "in.jpg"
    src.write_bytes(images.jpeg(images.arrow_picture((640, 480)))[:1000])
    dest = tmp_path / "out.jpg"
    dest.write_bytes(b"previous rendition")

    result = run(cli, "render", src, "--preset", "thumbnail", "-o", dest)

    assert_one_error_line(result, "error: DecodeError: JPEG: Premature end of JPEG file")
    assert dest.read_bytes() == b"previous rendition"


def test_missing_source_exits_2(cli: list[str], tmp_path: Path) -> None:
    dest = tmp_path / "out.jpg"

    result = run(cli, "render", tmp_path / "nope.jpg", "--preset", "thumbnail", "-o", dest)

    assert_one_error_line(result, "error: FileNotFoundError: ")
    assert "nope.jpg" in result.stderr
    assert not dest.exists()


def test_missing_dest_directory_exits_2(cli: list[str], tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    src.write_bytes(images.png(images.arrow_picture((64, 48))))

    result = run(cli, "render", src, "--preset", "thumbnail", "-o", tmp_path / "no" / "such" / "dir" / "out.jpg")

    assert_one_error_line(result, "error: FileNotFoundError: ")


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        pytest.param(["--preset", "huge"], "argument --preset: invalid choice: 'huge'", id="unknown-preset"),
        pytest.param(["--preset", "thumbnail", "--format", "png"], "argument --format: invalid choice", id="format"),
        pytest.param([], "the following arguments are required: --preset", id="no-preset"),
    ],
)
def test_bad_arguments_are_argparse_errors(cli: list[str], tmp_path: Path, args: list[str], complaint: str) -> None:
    src = tmp_path / "in.png"
    src.write_bytes(images.png(images.arrow_picture((64, 48))))
    dest = tmp_path / "out.jpg"

    result = run(cli, "render", src, *args, "-o", dest)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: kiray-imaging render")
    assert complaint in result.stderr
    assert not dest.exists()
