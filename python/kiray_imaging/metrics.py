"""CloudWatch metrics in the Embedded Metric Format (Powertools for AWS Lambda's Metrics): JSON on stdout that
CloudWatch turns into metrics, with no API call, no extra permission and no latency.

Namespace ``KirayImaging``; dimensions ``service`` and ``rendition`` (thumbnail, medium):
- ``RenditionsMade`` (count) and the stage durations ``DownloadMs``, ``DecodeMs``, ``ColourMs``, ``ResizeMs``,
  ``OrientMs``, ``EncodeMs``, ``UploadMs`` (milliseconds), one value per rendition written;
- ``RenditionsRemoved`` (count): files deleted, of a deleted upload or superseded by a newer one;
- ``Skipped`` (count) per object there was nothing to do for (superseded, empty, outside the prefixes);
- ``Failures`` (count) with a third dimension ``error_class`` (DecodeError, AccessDenied, ...), so an alarm can
  watch one class, and ``Retries`` the same way for transient errors (SlowDown, timeouts) that Lambda or Batch
  Operations retries; each written at once, as its own EMF document.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from kiray_imaging.logs import SERVICE

NAMESPACE = "KirayImaging"

_metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def rendered(stages_ms: Mapping[str, float]) -> None:
    _metrics.add_metric(name="RenditionsMade", unit=MetricUnit.Count, value=1)
    for stage, ms in stages_ms.items():
        _metrics.add_metric(name=f"{stage.capitalize()}Ms", unit=MetricUnit.Milliseconds, value=ms)


def removed(files: int) -> None:
    """Rendition files deleted: of a deleted upload, or superseded by a newer one."""
    _metrics.add_metric(name="RenditionsRemoved", unit=MetricUnit.Count, value=files)


def skipped() -> None:
    _metrics.add_metric(name="Skipped", unit=MetricUnit.Count, value=1)


def failed(rendition: str, error_class: str, *, transient: bool = False) -> None:
    """A permanent failure (``Failures``), or a transient one that is raised for Lambda to retry (``Retries``)."""
    dimensions = {"service": SERVICE, "rendition": rendition}
    with single_metric(
        name="Retries" if transient else "Failures",
        unit=MetricUnit.Count,
        value=1,
        namespace=NAMESPACE,
        default_dimensions=dimensions,
    ) as metric:
        metric.add_dimension(name="error_class", value=error_class)


def flush(rendition: str) -> None:
    """Writes what this invocation recorded as one EMF document; nothing when it recorded nothing."""
    if _metrics.metric_set:
        _metrics.add_dimension(name="rendition", value=rendition)
        _metrics.flush_metrics()
