"""The child process of the speed benchmark for the Python tools (ours, Pillow-draft, pyvips); bench/tools.py drives it.

    python -m bench.speed_runner TOOL MODE < request.json

TOOL is ``ours``, ``pillow`` or ``pyvips``. MODE is one of

- ``serve``: one JSON request per stdin line, one JSON answer per stdout line: ``open`` a photo (read it, warm up),
  time ``own`` (each preset from its own decode) or ``one`` (both from one decode, where the tool can), ``save``
  the last renditions; the parent takes the medians, taking turns between tools so that they share the load;
- ``rss``: render the photo's presets once each, then print this process's peak RSS (VmHWM);

``open`` and ``rss`` carry ``"plans": {preset: {...}}``, our core's plan for that photo (`PlanSpec`), for the peers
that crop or shrink on load as our core does;
- ``idle``: import the library and print the peak RSS, the floor under every ``rss`` figure;
- ``versions``: the library versions, one JSON object.

Presets travel as numbers, ``{name, width, height, fit, quality}``, from the parent (kiray_imaging.presets), as for
sharp_bench.mjs; ``rss`` reads ``{"file", "presets", "plans"}`` on stdin.

Only the standard library is imported at module level, and no part of the parent (numpy, the references, the
`bench.peers` package, which imports our core): a peak-RSS child holds its own library and nothing else. pyvips
reads VIPS_CONCURRENCY when it is first imported, so the parent sets it in this process's environment.
"""

from __future__ import annotations

import importlib
import io
import json
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# The wording libraries use when they lack a loader or a codec for an input (the same test as sharp_render.mjs):
# a format the tool does not read, rather than a failure on one it claims to read.
UNSUPPORTED = re.compile(
    r"unsupported image format|not been built in|unsupported codec|no decoder|unsupported feature"
    r"|not a known (buffer )?format|cannot identify image file",
    re.IGNORECASE,
)
STAGES = ("decode", "colour", "resize", "orient", "encode")


@dataclass(frozen=True)
class PresetSpec:
    name: str
    width: int
    height: int
    fit: str
    quality: int

    @staticmethod
    def of(raw: dict[str, Any]) -> PresetSpec:
        return PresetSpec(str(raw["name"]), int(raw["width"]), int(raw["height"]), str(raw["fit"]), int(raw["quality"]))


@dataclass(frozen=True)
class PlanSpec:
    """Our core's plan (``kiray_imaging.plan``) for the photo at hand and one preset, as numbers from the parent: this
    process does not import the core, so that a peer's peak RSS holds its own library alone."""

    crop_left: float
    """The source crop, in stored (pre-orientation) full-size pixels."""
    crop_top: float
    crop_width: float
    crop_height: float
    out_width: int
    """The output size in stored orientation."""
    out_height: int
    shrink_on_load: int
    """The JPEG DCT shrink to decode at: our core's own choice for this photo where it read it."""

    @staticmethod
    def of(raw: dict[str, Any]) -> PlanSpec:
        return PlanSpec(
            float(raw["crop_left"]),
            float(raw["crop_top"]),
            float(raw["crop_width"]),
            float(raw["crop_height"]),
            int(raw["out_width"]),
            int(raw["out_height"]),
            int(raw["shrink_on_load"]),
        )


def plan_specs(raw: dict[str, Any]) -> dict[str, PlanSpec]:
    return {str(name): PlanSpec.of(plan) for name, plan in raw.items()}


def exif_orientation(image: Any) -> int:
    """A PIL image's EXIF orientation, 1 where it has none or an invalid one (as our core reads it)."""
    orientation = int(image.getexif().get(0x0112, 1))
    return orientation if orientation in range(1, 9) else 1


@dataclass
class Output:
    data: bytes
    width: int
    height: int
    stages: dict[str, float] = field(default_factory=dict)
    """Milliseconds per stage where the tool's pipeline has separable stages (ours, Pillow); empty for the lazy
    libvips pipelines, where decode, resize and encode run interleaved."""
    shrink: int | None = None


class UnreadableError(Exception):
    """The tool cannot render this file; `unsupported` when it declines the format by design."""

    def __init__(self, reason: str, *, unsupported: bool) -> None:
        super().__init__(reason)
        self.unsupported = unsupported


class Tool(Protocol):
    one_decode: bool
    """Whether the tool's API can make both presets from one decode."""
    plans: dict[str, PlanSpec]
    """Preset name → our core's plan for the photo at hand, from the parent: the peers that crop or pick a shrink
    themselves (Pillow's draft, pyvips' one decode) then decode and crop exactly as we do."""

    def load(self) -> None: ...

    def versions(self) -> dict[str, str]: ...

    def render(self, data: bytes, preset: PresetSpec) -> Output: ...

    def render_one_decode(self, data: bytes, presets: Sequence[PresetSpec]) -> list[Output]: ...


# --- the tools --------------------------------------------------------------------------------------------------


def _ms_since(start: int) -> float:
    return (time.perf_counter_ns() - start) / 1e6


class Ours:
    """kiray_imaging.render, as the handlers call it: one preset per call, so one decode per rendition; and
    kiray_imaging.render_presets for both from one decode."""

    one_decode = True

    def __init__(self) -> None:
        self.plans: dict[str, PlanSpec] = {}

    def load(self) -> None:
        self.kiray = importlib.import_module("kiray_imaging")

    def versions(self) -> dict[str, str]:
        return {"kiray_imaging": str(self.kiray.__version__)}

    def render(self, data: bytes, preset: PresetSpec) -> Output:
        try:
            rendition = self.kiray.render(data, preset.name)
        except self.kiray.UnsupportedFormatError as e:
            raise UnreadableError(f"UnsupportedFormatError: {e}", unsupported=True) from e
        except self.kiray.ImageError as e:
            raise UnreadableError(f"{type(e).__name__}: {e}", unsupported=False) from e
        return self._output(rendition)

    def render_one_decode(self, data: bytes, presets: Sequence[PresetSpec]) -> list[Output]:
        renditions = self.kiray.render_presets(data, {p.name: ("jpeg",) for p in presets})
        return [self._output(renditions[p.name]["jpeg"]) for p in presets]

    @staticmethod
    def _output(rendition: Any) -> Output:
        stages = {stage: float(ms) for stage, ms in rendition.timings_ms.items()}
        return Output(rendition.data, rendition.width, rendition.height, stages, int(rendition.shrink_on_load))


# Pillow's own table for ImageOps.exif_transpose, applied to the small output instead of the decoded source.
_TRANSPOSE_NAMES = {
    2: "FLIP_LEFT_RIGHT",
    3: "ROTATE_180",
    4: "FLIP_TOP_BOTTOM",
    5: "TRANSPOSE",
    6: "ROTATE_270",
    7: "TRANSVERSE",
    8: "ROTATE_90",
}


@dataclass(frozen=True)
class _Decoded:
    pixels: Any
    """A PIL image in a mode Lanczos resizes (L, LA, RGB, RGBA, CMYK), drafted to 1/`shrink` of the stored size."""
    orientation: int
    shrink: int
    icc: bytes | None


class PillowDraft:
    """Pillow with JPEG DCT scaling: Image.draft() to the DCT scale of our core's plan for the photo, Lanczos with
    that plan's crop, ICC → sRGB with LittleCMS when the file has a profile, EXIF orientation, JPEG at the preset's
    quality with optimised Huffman tables.

    The order is the cheap one a careful Pillow user would pick, and the one our core uses: resize first, then
    orient, colour-convert and flatten the small image, so the full-size pixels are touched only by the decoder and
    the resampler.
    """

    one_decode = True

    def __init__(self) -> None:
        self.plans: dict[str, PlanSpec] = {}

    def load(self) -> None:
        self.pil = importlib.import_module("PIL")
        self.image = importlib.import_module("PIL.Image")
        self.cms = importlib.import_module("PIL.ImageCms")
        self.features = importlib.import_module("PIL.features")
        self.srgb = self.cms.createProfile("sRGB")

    def versions(self) -> dict[str, str]:
        turbo = self.features.version("libjpeg_turbo")
        return {
            "Pillow": f"{self.pil.__version__} (libjpeg-turbo {turbo}, LittleCMS {self.features.version('littlecms2')})"
        }

    def _decode(self, data: bytes, presets: Sequence[PresetSpec], stages: dict[str, float]) -> _Decoded:
        start = time.perf_counter_ns()
        try:
            image = self.image.open(io.BytesIO(data))
        except self.image.UnidentifiedImageError as e:
            # Its message ends with the repr of our BytesIO, an address that would change every run.
            raise UnreadableError("UnidentifiedImageError: cannot identify image file", unsupported=True) from e
        orientation = exif_orientation(image)
        width, height = image.size
        shrink = 1
        if image.format == "JPEG":
            wanted = min(self._plan(p).shrink_on_load for p in presets)
            if wanted > 1:
                # Floor division: draft() picks the largest scale whose result still covers the size asked for, so a
                # rounded-up size could push it down a whole power of two.
                image.draft("RGB", (max(width // wanted, 1), max(height // wanted, 1)))
                shrink = next((s for s in (8, 4, 2) if image.size == (-(-width // s), -(-height // s))), 1)
        try:
            image.load()
        except (OSError, ValueError, SyntaxError) as e:
            raise UnreadableError(f"{type(e).__name__}: {e}", unsupported=bool(UNSUPPORTED.search(str(e)))) from e
        icc = image.info.get("icc_profile")
        pixels = self._resizable(image)
        stages["decode"] = _ms_since(start)
        return _Decoded(pixels, orientation, shrink, icc or None)

    def _resizable(self, image: Any) -> Any:
        """Modes Lanczos resizes as pixels (palette indices would not do); alpha kept for after the resize."""
        mode = image.mode
        if mode in ("P", "PA"):
            return image.convert("RGBA" if mode == "PA" or image.has_transparency_data else "RGB")
        if mode == "1":
            return image.convert("L")
        if mode in ("I;16", "I;16B", "I;16L", "I"):
            return image.convert("I").point(lambda v: v * (1 / 257)).convert("L")
        if mode in ("RGBX", "YCbCr"):
            return image.convert("RGB")
        if mode in ("La", "RGBa"):
            return image.convert(mode.upper())
        return image

    def _plan(self, preset: PresetSpec) -> PlanSpec:
        try:
            return self.plans[preset.name]
        except KeyError:
            raise RuntimeError(f"no plan for preset {preset.name!r}: the parent sends our core's with 'open'") from None

    def _finish(self, source: _Decoded, preset: PresetSpec, stages: dict[str, float]) -> Output:
        """Resize (our core's crop on full-size coordinates, mapped into the drafted pixels), orient, colour, encode."""
        p = self._plan(preset)
        d = source.shrink
        right, bottom = p.crop_left + p.crop_width, p.crop_top + p.crop_height
        start = time.perf_counter_ns()
        out = source.pixels.resize(
            (p.out_width, p.out_height),
            self.image.Resampling.LANCZOS,
            box=(p.crop_left / d, p.crop_top / d, right / d, bottom / d),
        )
        stages["resize"] = _ms_since(start)

        start = time.perf_counter_ns()
        if source.orientation != 1:
            out = out.transpose(getattr(self.image.Transpose, _TRANSPOSE_NAMES[source.orientation]))
        stages["orient"] = _ms_since(start)

        start = time.perf_counter_ns()
        out = self._srgb(out, source.icc)
        stages["colour"] = _ms_since(start)

        start = time.perf_counter_ns()
        buf = io.BytesIO()
        out.save(buf, "JPEG", quality=preset.quality, optimize=True)
        stages["encode"] = _ms_since(start)
        return Output(buf.getvalue(), out.width, out.height, dict(stages), d)

    def _srgb(self, image: Any, icc: bytes | None) -> Any:
        """Alpha onto white, then the embedded profile → sRGB; the result is always 3-channel RGB like every other
        tool's, so bytes compare like with like (a grey photo too)."""
        if image.mode in ("LA", "RGBA"):
            background = self.image.new(image.mode[:-1], image.size, 255 if image.mode == "LA" else (255, 255, 255))
            background.paste(image, mask=image.getchannel("A"))
            image = background
        if icc:
            try:
                profile = self.cms.ImageCmsProfile(io.BytesIO(icc))
                converted = self.cms.profileToProfile(
                    image,
                    profile,
                    self.srgb,
                    renderingIntent=self.cms.Intent.RELATIVE_COLORIMETRIC,
                    outputMode="RGB",
                )
                if converted is not None:
                    return converted
            except (OSError, self.cms.PyCMSError):
                # An unusable profile is ignored, as our core and libvips do.
                pass
        return image if image.mode == "RGB" else image.convert("RGB")

    def render(self, data: bytes, preset: PresetSpec) -> Output:
        stages: dict[str, float] = {}
        return self._finish(self._decode(data, [preset], stages), preset, stages)

    def render_one_decode(self, data: bytes, presets: Sequence[PresetSpec]) -> list[Output]:
        # One draft that covers every preset (the largest wins), then each output from the same decoded pixels.
        stages: dict[str, float] = {}
        source = self._decode(data, presets, stages)
        return [self._finish(source, p, dict(stages)) for p in presets]


class Pyvips:
    """pyvips' thumbnail: shrink-on-load, orientation, centre crop; then the embedded profile → sRGB, alpha onto white
    and JPEG at the preset's quality with sharp's encoder settings (optimised Huffman tables, no metadata).

    The profile is converted after thumbnail rather than by its ``export_profile="srgb"``: that option also
    transforms untagged images, sRGB to sRGB, a whole transform for identical pixels (its cost is in
    bench/results/history.md) that sharp (the same libvips) does not pay and a careful pyvips user would not either.
    Tagged images get the same transform either way, on the small image.
    """

    one_decode = True

    def __init__(self) -> None:
        self.plans: dict[str, PlanSpec] = {}

    def load(self) -> None:
        # Imported by name: pyvips ships no type information, and it is installed by the benchmark's own
        # requirements, which a lint run on a fresh machine may not have yet.
        self.vips = importlib.import_module("pyvips")
        # A loop over the same bytes would hit libvips' operation cache, which a Lambda rendering each upload once
        # never does: timed without it.
        self.vips.cache_set_max(0)

    def versions(self) -> dict[str, str]:
        v = self.vips
        return {"pyvips": f"{v.__version__} (libvips {v.version(0)}.{v.version(1)}.{v.version(2)})"}

    def _unreadable(self, e: Exception) -> UnreadableError:
        message = str(e)
        lines = [line.strip() for line in message.splitlines() if line.strip()]
        named = next((line for line in lines if UNSUPPORTED.search(line)), lines[0] if lines else message)
        return UnreadableError(named, unsupported=bool(UNSUPPORTED.search(message)))

    def _options(self, preset: PresetSpec) -> dict[str, Any]:
        return {"height": preset.height, "size": "down", "crop": "centre" if preset.fit == "cover" else "none"}

    def _encode(self, image: Any, preset: PresetSpec) -> Output:
        if image.get_typeof("icc-profile-data"):
            image = image.icc_transform("srgb")
        elif image.interpretation != "srgb":
            # Grey and 16-bit RGB become 8-bit sRGB, the 3-channel JPEG every other tool writes.
            image = image.colourspace("srgb")
        if image.hasalpha():
            image = image.flatten(background=[255] * (image.bands - 1))
        data = image.jpegsave_buffer(Q=preset.quality, optimize_coding=True, keep="none")
        return Output(bytes(data), int(image.width), int(image.height))

    def render(self, data: bytes, preset: PresetSpec) -> Output:
        try:
            image = self.vips.Image.thumbnail_buffer(data, preset.width, **self._options(preset))
            return self._encode(image, preset)
        except self.vips.Error as e:
            raise self._unreadable(e) from e

    def render_one_decode(self, data: bytes, presets: Sequence[PresetSpec]) -> list[Output]:
        # Decoded once into memory (lazy images would decode again per output), shrunk on load only as far as the
        # largest preset allows, then thumbnail_image per preset.
        try:
            header = self.vips.Image.new_from_buffer(data, "")
            image = header
            if str(header.get("vips-loader")).startswith("jpegload"):
                # A JPEG the parent's Pillow could not plan is decoded whole: never fewer pixels than the output.
                planned = [self.plans[p.name].shrink_on_load for p in presets if p.name in self.plans]
                shrink = min(planned) if len(planned) == len(presets) else 1
                if shrink > 1:
                    image = self.vips.Image.new_from_buffer(data, "", shrink=shrink)
            image = image.copy_memory()
            return [self._encode(image.thumbnail_image(p.width, **self._options(p)), p) for p in presets]
        except self.vips.Error as e:
            raise self._unreadable(e) from e


TOOLS: dict[str, type[Ours] | type[PillowDraft] | type[Pyvips]] = {
    "ours": Ours,
    "pillow": PillowDraft,
    "pyvips": Pyvips,
}


# --- measuring --------------------------------------------------------------------------------------------------


def peak_rss_kb() -> int:
    """This process's peak resident set (VmHWM). Not getrusage in the parent: a child's ru_maxrss also counts the
    parent's pages it inherited before exec, which would charge our big parent to every tool."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def _skip(file: str, e: UnreadableError) -> dict[str, Any]:
    return {"file": file, "ok": False, "reason": str(e), "unsupported": e.unsupported}


class Session:
    """The ``serve`` mode: one photo at a time, one measurement per request, so the parent can take turns between
    tools and each repetition of every tool runs under the same machine load."""

    def __init__(self, tool: Tool) -> None:
        self.tool = tool
        self.path: Path | None = None
        self.data = b""
        self.presets: list[PresetSpec] = []
        self.last: dict[str, Output] = {}
        self.last_one: list[Output] = []

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request["op"]
        if op == "open":
            self.tool.plans = plan_specs(request.get("plans", {}))
            return self.open(Path(request["file"]), [PresetSpec.of(p) for p in request["presets"]], request["warmup"])
        if self.path is None:
            raise RuntimeError(f"{op!r} before a successful 'open'")
        if op == "own":
            return self.own()
        if op == "one":
            return self.one()
        if op == "save":
            return self.save(Path(request["outputs"]))
        raise RuntimeError(f"unknown op {op!r}")

    def open(self, path: Path, presets: list[PresetSpec], warmup: int) -> dict[str, Any]:
        """Reads the photo (not timed) and renders it `warmup` times each way; the first render also finds a file
        the tool cannot read, before anything is timed."""
        self.path, self.data, self.presets, self.last, self.last_one = None, path.read_bytes(), presets, {}, []
        try:
            for _ in range(warmup):
                for p in presets:
                    self.last[p.name] = self.tool.render(self.data, p)
                if self.tool.one_decode:
                    self.last_one = self.tool.render_one_decode(self.data, presets)
        except UnreadableError as e:
            return _skip(str(path), e)
        self.path = path
        return {
            "file": str(path),
            "ok": True,
            "one_decode": self.tool.one_decode,
            "shrink": {name: out.shrink for name, out in self.last.items()},
        }

    def own(self) -> dict[str, Any]:
        """Each preset once from its own decode, timed one by one."""
        ms: dict[str, float] = {}
        stages: dict[str, dict[str, float]] = {}
        for p in self.presets:
            start = time.perf_counter_ns()
            out = self.tool.render(self.data, p)
            ms[p.name] = _ms_since(start)
            stages[p.name] = out.stages
            self.last[p.name] = out
        return {"ms": ms, "stages": stages}

    def one(self) -> dict[str, Any]:
        """Every preset from one decode, timed as a whole; null where the tool's API cannot."""
        if not self.tool.one_decode:
            return {"ms": None}
        start = time.perf_counter_ns()
        self.last_one = self.tool.render_one_decode(self.data, self.presets)
        return {"ms": _ms_since(start)}

    def save(self, outputs: Path) -> dict[str, Any]:
        """The last renditions, written to `outputs` for scoring, and their facts."""
        assert self.path is not None
        outputs.mkdir(parents=True, exist_ok=True)

        def facts(out: Output, name: str) -> dict[str, Any]:
            path = outputs / name
            path.write_bytes(out.data)
            return {
                "width": out.width,
                "height": out.height,
                "bytes": len(out.data),
                "shrink": out.shrink,
                "output": str(path),
            }

        stem = self.path.name
        return {
            "renditions": {p.name: facts(self.last[p.name], f"{stem}.{p.name}.jpg") for p in self.presets},
            "one": {p.name: facts(o, f"{stem}.{p.name}.one.jpg") for p, o in zip(self.presets, self.last_one)}
            if self.last_one
            else None,
        }


def serve(tool: Tool) -> int:
    session = Session(tool)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(session.handle(json.loads(line))), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] not in TOOLS or args[1] not in ("serve", "rss", "idle", "versions"):
        print(f"usage: python -m bench.speed_runner {{{','.join(TOOLS)}}} {{serve,rss,idle,versions}}", file=sys.stderr)
        return 2
    name, mode = args
    tool: Tool = TOOLS[name]()
    tool.load()
    if mode == "versions":
        print(json.dumps(tool.versions()))
        return 0
    if mode == "idle":
        print(json.dumps({"peak_kb": peak_rss_kb()}))
        return 0
    if mode == "serve":
        return serve(tool)

    request = json.load(sys.stdin)
    presets = [PresetSpec.of(p) for p in request["presets"]]
    tool.plans = plan_specs(request.get("plans", {}))
    path = Path(request["file"])
    data = path.read_bytes()
    try:
        for p in presets:
            tool.render(data, p)
    except UnreadableError as e:
        print(json.dumps(_skip(str(path), e)))
        return 0
    print(json.dumps({"file": str(path), "ok": True, "peak_kb": peak_rss_kb()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
