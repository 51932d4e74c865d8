"""Fixtures for the handler tests (helpers are in s3_helpers.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import pytest

from kiray_imaging.lambda_pipeline import Handler, make_handler

if TYPE_CHECKING:
    from tests.handlers.s3_helpers import BUCKET
else:
    from s3_helpers import BUCKET


@pytest.fixture
def s3(local_aws: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The functions' environment, and a bucket on moto to run them against."""
    for name, value in {
        "SOURCE_BUCKET": BUCKET,
        "DEST_BUCKET": BUCKET,
        "SOURCE_PREFIX": "uploads/",
        "DEST_PREFIX": "renditions/",
        "OUTPUT_FORMAT": "jpeg",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def functions(s3: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Handler]:
    """Both functions as deployed: the thumbnail in JPEG, the medium in JPEG and WebP."""
    thumbnail = make_handler("thumbnail")
    monkeypatch.setenv("OUTPUT_FORMAT", "jpeg,webp")
    medium = make_handler("medium")
    monkeypatch.setenv("OUTPUT_FORMAT", "jpeg")
    return {"thumbnail": thumbnail, "medium": medium}
