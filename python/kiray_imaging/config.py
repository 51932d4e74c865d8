"""Deployment settings, read from the environment that serverless.yml sets. The only module that reads os.environ."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from kiray_imaging._core import DEFAULT_MAX_INPUT_BYTES, DEFAULT_MAX_PIXELS
from kiray_imaging.names import FormatName
from kiray_imaging.outcomes import Skip
from kiray_imaging.rendering import FORMATS, output_format

MAX_DEST_PREFIX_BYTES = 512
"""Leaves room in S3's 1024-byte keys for the rendition name, a readable part and a sha256 (see output_keys)."""


DEFAULT_SERVICE_NAME = "kiray-imaging"


def service_name(env: Mapping[str, str] | None = None) -> str:
    """The ``service`` of every log line and metric: ``POWERTOOLS_SERVICE_NAME`` (Powertools' own setting;
    serverless.yml makes it ``kiray-imaging-<stage>`` so that stages sharing an account keep their metrics apart)."""
    env = os.environ if env is None else env
    return env.get("POWERTOOLS_SERVICE_NAME", "").strip() or DEFAULT_SERVICE_NAME


class ConfigError(ValueError):
    """The function's environment is wrong: a deployment bug, reported at cold start."""


@dataclass(frozen=True)
class Settings:
    source_bucket: str
    source_prefix: str
    """Only keys under this prefix are processed, e.g. ``uploads/``."""
    dest_bucket: str
    dest_prefix: str
    """Renditions are written under this prefix, e.g. ``renditions/``; never read back."""
    output_formats: tuple[FormatName, ...]
    """``OUTPUT_FORMAT``: ``jpeg``, ``webp`` or both (``jpeg,webp``), encoded from one decode."""
    max_input_bytes: int
    max_pixels: int
    cache_control: str
    log_level: str
    event_bus: str | None = None
    """``EVENT_BUS_NAME``: where the events for the backend go (events.py); ``None`` publishes none."""

    def left_out(self, bucket: str, key: str, size: int | None) -> Skip | None:
        """Why an object is not an upload to render, from its name and size alone (the functions and the backfill
        listing both ask), or ``None``."""
        if bucket == self.dest_bucket and key.startswith(self.dest_prefix):
            # Recursion guard, in code as well as in the trigger's filter: never read our own output.
            return Skip.RECURSION_GUARD
        if bucket != self.source_bucket or not key.startswith(self.source_prefix):
            return Skip.OUTSIDE_SOURCE
        if key.endswith("/") or size == 0:
            return Skip.EMPTY
        return None


def _prefix(value: str) -> str:
    value = value.lstrip("/")
    return value if not value or value.endswith("/") else value + "/"


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a whole number, got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{name}: expected ≥ 1, got {value}")
    return value


def load(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    missing = [n for n in ("SOURCE_BUCKET", "DEST_BUCKET") if not env.get(n)]
    if missing:
        raise ConfigError(f"missing environment variable(s): {', '.join(missing)}")
    names = [f.strip().lower() for f in env.get("OUTPUT_FORMAT", "jpeg").split(",") if f.strip()]
    try:
        output_formats = tuple(output_format(name) for name in names)
    except ValueError:
        output_formats = ()
    if not output_formats or len(set(output_formats)) != len(output_formats):
        raise ConfigError(
            f"OUTPUT_FORMAT: expected distinct formats from {FORMATS}, comma-separated; "
            f"got {env.get('OUTPUT_FORMAT')!r}"
        )
    settings = Settings(
        source_bucket=env["SOURCE_BUCKET"],
        source_prefix=_prefix(env.get("SOURCE_PREFIX", "uploads/")),
        dest_bucket=env["DEST_BUCKET"],
        dest_prefix=_prefix(env.get("DEST_PREFIX", "renditions/")),
        output_formats=output_formats,
        max_input_bytes=_positive_int(env, "MAX_INPUT_BYTES", DEFAULT_MAX_INPUT_BYTES),
        max_pixels=_positive_int(env, "MAX_PIXELS", DEFAULT_MAX_PIXELS),
        cache_control=env.get("CACHE_CONTROL", "public, max-age=31536000, immutable"),
        log_level=env.get("LOG_LEVEL", "INFO").upper(),
        event_bus=env.get("EVENT_BUS_NAME", "").strip() or None,
    )
    if len(settings.dest_prefix.encode()) > MAX_DEST_PREFIX_BYTES:
        raise ConfigError(f"DEST_PREFIX: at most {MAX_DEST_PREFIX_BYTES} bytes (UTF-8), got {settings.dest_prefix!r}")
    if settings.source_bucket == settings.dest_bucket and (
        settings.dest_prefix.startswith(settings.source_prefix)
        or settings.source_prefix.startswith(settings.dest_prefix)
    ):
        # Renditions written where uploads are read would trigger the functions again, forever.
        raise ConfigError(
            f"DEST_PREFIX {settings.dest_prefix!r} and SOURCE_PREFIX {settings.source_prefix!r} overlap in "
            f"bucket {settings.source_bucket!r}: renditions would re-trigger the functions"
        )
    return settings
