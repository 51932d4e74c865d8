"""`kiray-imaging` (or `python -m kiray_imaging`): render files on disk with the production presets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kiray_imaging import backfill, batch, bucket_setup, verify_layer
from kiray_imaging._core import ImageError
from kiray_imaging.files import file_mode, write_atomically
from kiray_imaging.presets import PRESETS
from kiray_imaging.rendering import FORMATS, render

EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiray-imaging", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    r = commands.add_parser("render", help="render one image file with a preset")
    r.add_argument("src", type=Path, help="input image (JPEG, PNG, WebP, GIF or AVIF; sniffed from its bytes)")
    r.add_argument("--preset", required=True, choices=sorted(PRESETS))
    r.add_argument("--format", default="jpeg", choices=FORMATS)
    r.add_argument("-o", "--output", required=True, type=Path, help="where to write the rendition")
    verify_layer.add_parser(commands)
    batch.register(commands)
    backfill.register(commands)
    bucket_setup.register(commands)
    return parser


def _render(args: argparse.Namespace) -> int:
    try:
        data = args.src.read_bytes()
        rendition = render(data, args.preset, format=args.format)
        write_atomically(args.output, rendition.data, file_mode())
    except (ImageError, OSError, ValueError) as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(
        f"{args.output}: {rendition.width}x{rendition.height} {rendition.format}, {len(rendition.data)} bytes "
        f"(from {rendition.source_format} {rendition.source_width}x{rendition.source_height})"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "render":
        return _render(args)
    if args.command == "verify-layer":
        return verify_layer.run(args)
    if args.command in ("batch", "backfill", "bucket-setup"):
        return int(args.run(args))
    raise AssertionError(args.command)


if __name__ == "__main__":
    raise SystemExit(main())
