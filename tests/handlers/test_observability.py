"""What the on-call engineer sees: Powertools JSON log lines and EMF metric documents on stdout, per invocation."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

from kiray_imaging.lambda_pipeline import make_handler

if TYPE_CHECKING:
    from tests.handlers.s3_helpers import BUCKET, event, jpeg, log_lines, metric_documents, upload
else:
    from s3_helpers import BUCKET, event, jpeg, log_lines, metric_documents, upload

STAGES = ("DownloadMs", "DecodeMs", "ColourMs", "ResizeMs", "OrientMs", "EncodeMs", "UploadMs")
CONTEXT = SimpleNamespace(aws_request_id="req-1234", function_name="kiray-imaging-dev-generate-thumbnail")


def metric_names(document: dict[str, Any]) -> set[str]:
    return {m["Name"] for directive in document["_aws"]["CloudWatchMetrics"] for m in directive["Metrics"]}


def dimensions(document: dict[str, Any]) -> list[list[str]]:
    return [d for directive in document["_aws"]["CloudWatchMetrics"] for d in directive["Dimensions"]]


def test_a_rendition_logs_one_line_with_its_facts_and_emits_its_metrics(
    s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = make_handler("thumbnail")
    capsys.readouterr()
    # Smaller than the 2x box: one file, one line (a larger photo's @2x file gets its own).
    handler(event(upload(s3, "uploads/l7/kitchen.jpg", jpeg(640, 480))), CONTEXT)
    out = capsys.readouterr().out

    (line,) = [x for x in log_lines(out) if x["message"] == "rendered"]
    assert line["level"] == "INFO"
    assert line["service"] == "kiray-imaging"
    assert line["request_id"] == "req-1234"
    assert line["location"].startswith("_log_rendered:"), "location must name the caller, not the log helper"
    assert (line["bucket"], line["key"], line["rendition"]) == (BUCKET, "uploads/l7/kitchen.jpg", "thumbnail")
    assert (line["input_width"], line["input_height"], line["output_width"], line["output_height"]) == (
        640, 480, 400, 300,
    )  # fmt: skip
    assert line["input_bytes"] > 0
    assert line["output_bytes"] > 0
    assert set(line["ms"]) == {"download", "decode", "colour", "resize", "orient", "encode", "upload"}

    (document,) = metric_documents(out)
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "KirayImaging"
    assert metric_names(document) == {"RenditionsMade", *STAGES}
    assert document["RenditionsMade"] == [1.0]
    assert document["rendition"] == "thumbnail"
    assert ["service", "rendition"] in dimensions(document) or ["rendition", "service"] in dimensions(document)


def test_a_failure_is_counted_by_error_class(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    handler = make_handler("medium")
    capsys.readouterr()
    handler(event(upload(s3, "uploads/l7/notes.jpg", b"<html>not a photo</html>")), CONTEXT)
    out = capsys.readouterr().out

    (line,) = [x for x in log_lines(out) if x["level"] == "ERROR"]
    assert line["error_class"] == "UnsupportedFormatError"
    assert line["key"] == "uploads/l7/notes.jpg"
    (document,) = metric_documents(out)
    assert metric_names(document) == {"Failures"}
    assert document["error_class"] == "UnsupportedFormatError"
    assert document["rendition"] == "medium"
    assert sorted(dimensions(document)[0]) == ["error_class", "rendition", "service"]


def test_nothing_to_do_is_counted_as_skipped(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    handler = make_handler("thumbnail")
    capsys.readouterr()
    handler(event(upload(s3, "uploads/l7/", b"")), CONTEXT)
    (document,) = metric_documents(capsys.readouterr().out)
    assert metric_names(document) == {"Skipped"}


def test_the_cold_start_line_names_the_core_and_its_simd_level(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    make_handler("thumbnail")
    (line,) = [x for x in log_lines(capsys.readouterr().out) if x["message"] == "cold start"]
    assert line["core_version"]
    assert line["simd"] in {"avx2", "sse4.1", "none", "neon"}
