"""Unprofiled CMYK JPEGs: how far each peer's rendition lands from the photo the CMYK was separated from.

A print workflow separates an sRGB photo into CMYK for some press and, often enough, saves it without the profile.
Every renderer must then guess the press. This report makes such files from corpus photos (separated, perceptual
intent, for each press profile it can find: our own FOGRA39 fallback and, independent of it, Ghostscript's SWOP-like
`default_cmyk.icc`), renders them with our medium preset, with sharp (its built-in CMYK profile) and with the naive
`(1 − C)(1 − K)` (Pillow's `convert("RGB")`), and scores each against the original sRGB photo resized the same
way: mean ΔE76 and mean absolute error in 8-bit levels (lower is better), SSIM (higher is better).

    python -m bench.cmyk [--corpus DIR] [--out bench/results/cmyk.md] [--peers ours,sharp]
"""

from __future__ import annotations

import argparse
import glob
import io
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageCms

from bench import cli, metrics, reference
from bench.peers import Job, Peer, Rendered
from bench.peers.ours import Ours
from bench.peers.sharp import Sharp, unavailable_reason
from kiray_imaging.presets import PRESETS

DEFAULT_OUT = cli.ROOT / "bench" / "results" / "cmyk.md"
OUR_PROFILE = cli.ROOT / "rust_core" / "profiles" / "fogra39l-coated.icc"
SWOP_LIKE = (
    "/usr/share/color/icc/ghostscript/default_cmyk.icc",
    "/opt/homebrew/share/ghostscript/*/iccprofiles/default_cmyk.icc",
    "/usr/local/share/ghostscript/*/iccprofiles/default_cmyk.icc",
)
# Colour photos of the corpus; the sources are shrunk to this long side first (still above the medium preset's): the
# question is colour, and full-size separations would only slow the report down.
PHOTOS = ("Dragonfly_by_Bolly.jpg", "Wine_by_Jakub_Mede.jpg", "seeding_by_Clemens_Engelhardt.jpg",
          "derived_phone_pug_p3.jpg")  # fmt: skip
SOURCE_LONG_SIDE = 2048
NAIVE = "naive (1−C)(1−K)"

Float = NDArray[np.float64]


@dataclass(frozen=True)
class Press:
    name: str
    profile: Path


@dataclass(frozen=True)
class Score:
    delta_e: float
    mae: float
    ssim: float


def presses() -> list[Press]:
    found = [Press("FOGRA39 (our fallback's own press)", OUR_PROFILE)]
    for pattern in SWOP_LIKE:
        for path in sorted(glob.glob(pattern)):
            found.append(Press("SWOP-like (Ghostscript default_cmyk.icc)", Path(path)))
            return found
    return found


def srgb_to_lab(rgb: Float) -> Float:
    """sRGB 0..255 → CIELAB (D65), the usual formulas: ΔE76 between two renditions of the same screen colours."""
    c = rgb / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = linear @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def score(pixels: Float, ref: Float) -> Score:
    delta_e = float(np.mean(np.linalg.norm(srgb_to_lab(pixels) - srgb_to_lab(ref), axis=-1)))
    return Score(delta_e=delta_e, mae=float(np.mean(np.abs(pixels - ref))), ssim=metrics.ssim(pixels, ref))


def source_photo(path: Path) -> Image.Image:
    """The photo as the reference pipeline sees it (oriented, sRGB), shrunk to SOURCE_LONG_SIDE."""
    decoded = reference.decode(path.read_bytes())
    planes = [p.convert("L") for p in decoded.planes]
    image = Image.merge("RGB", planes if len(planes) == 3 else planes * 3)
    image.thumbnail((SOURCE_LONG_SIDE, SOURCE_LONG_SIDE), Image.Resampling.LANCZOS)
    return image


def separate(image: Image.Image, press: Press) -> bytes:
    """An unprofiled CMYK JPEG of `image` for `press` (perceptual separation, quality 95, 4:4:4)."""
    cmyk = ImageCms.profileToProfile(image, ImageCms.createProfile("sRGB"), ImageCms.getOpenProfile(str(press.profile)),
                                     outputMode="CMYK", renderingIntent=ImageCms.Intent.PERCEPTUAL)  # fmt: skip
    assert cmyk is not None
    out = io.BytesIO()
    cmyk.save(out, "JPEG", quality=95, subsampling=0)
    return out.getvalue()


def naive(data: bytes, size: tuple[int, int]) -> Float:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB").resize(size, Image.Resampling.LANCZOS), dtype=np.float64)


def decode(data: bytes) -> Float:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64)


def evaluate(
    photos: Sequence[Path], peer_names: Sequence[str], work: Path, log: Callable[[str], None]
) -> list[tuple[str, str, dict[str, Score]]]:
    preset = PRESETS["medium"]
    peers: dict[str, Peer] = {"ours": Ours(), "sharp": Sharp()}
    rows = []
    for photo in photos:
        original = source_photo(photo)
        for press in presses():
            source = work / f"{photo.stem}.{press.profile.stem}.cmyk.jpg"
            source.write_bytes(separate(original, press))
            results: dict[str, Score] = {}
            for name in peer_names:
                outcome = peers[name].render_all([Job(source, preset, work / name / f"{source.stem}.jpg")])[0]
                if not isinstance(outcome, Rendered):
                    raise RuntimeError(f"{name} did not render {source.name}: {outcome.reason}")
                pixels = decode(outcome.data)
                ref = original.resize((pixels.shape[1], pixels.shape[0]), Image.Resampling.LANCZOS)
                results[name] = score(pixels, np.asarray(ref, dtype=np.float64))
            ref_full = np.asarray(original, dtype=np.float64)
            results[NAIVE] = score(naive(source.read_bytes(), original.size), ref_full)
            log(f"{photo.name} / {press.name}: " + ", ".join(f"{k} ΔE {v.delta_e:.1f}" for k, v in results.items()))
            rows.append((photo.name, press.name, results))
    return rows


def table(rows: Sequence[tuple[str, str, dict[str, Score]]]) -> str:
    names = list(rows[0][2]) if rows else []
    head = "| photo | separated for | " + " | ".join(f"{n}: ΔE76 / MAE / SSIM" for n in names) + " |"
    lines = [head, "|" + "---|" * (2 + len(names))]
    for photo, press, results in rows:
        best = min(results.values(), key=lambda s: s.delta_e)
        cells = []
        for n in names:
            s = results[n]
            text = f"{s.delta_e:.1f} / {s.mae:.1f} / {s.ssim:.4f}"
            cells.append(f"**{text}**" if s is best else text)
        lines.append(f"| {photo} | {press} | " + " | ".join(cells) + " |")
    for press in dict.fromkeys(p for _, p, _ in rows):
        mean = {n: np.mean([r[n].delta_e for _, p, r in rows if p == press]) for n in names}
        lines.append(f"| **mean** | {press} | " + " | ".join(f"{mean[n]:.1f}" for n in names) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=cli.DEFAULT_CORPUS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--peers", default="ours,sharp", help="comma list from: ours, sharp")
    parser.add_argument("--photos", default=",".join(PHOTOS), help="comma list of corpus file names")
    args = parser.parse_args(argv)
    start = time.monotonic()

    def log(message: str) -> None:
        print(f"cmyk: {message}", file=sys.stderr, flush=True)

    peer_names = cli.names(args.peers)
    if not peer_names or set(peer_names) - {"ours", "sharp"}:
        log(f"expected peers from ours, sharp, got {args.peers!r}")
        return 2
    if "sharp" in peer_names and (reason := unavailable_reason()) is not None:
        log(f"sharp cannot run: {reason}. Run `make quality`, or pass --peers ours")
        return 2
    photos = [args.corpus / name for name in cli.names(args.photos)]
    if missing := [p for p in photos if not p.is_file()]:
        log(f"missing photos: {', '.join(map(str, missing))}")
        return 2
    with tempfile.TemporaryDirectory(prefix="kiray-cmyk-") as tmp:
        rows = evaluate(photos, peer_names, Path(tmp), log)
    text = (
        "# Unprofiled CMYK JPEGs\n\n"
        "Written by `python -m bench.cmyk` (run by `make quality`). Each photo is separated to CMYK for a press and "
        "saved without its profile; each renderer's medium is scored against the original sRGB photo resized the "
        "same way. Lower ΔE76 / MAE (8-bit levels) and higher SSIM are better; the best ΔE of a row is bold.\n\n"
        + table(rows)
        + f"\n\nTook {time.monotonic() - start:.0f} s.\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
