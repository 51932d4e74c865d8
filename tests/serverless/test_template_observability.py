"""The monitoring wiring in the packaged template: per-stage service name, a metric filter on every function's
permanent-failure log lines, and the alarm that watches them (moto does not model metric filters or alarms)."""

from __future__ import annotations

import json
from typing import Any

from kiray_imaging.config import DEFAULT_SERVICE_NAME, service_name

FUNCTIONS = ("GenerateDashthumbnail", "GenerateDashmedium")
SERVICE = "kiray-imaging-dev"


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def test_every_function_names_its_stage_as_the_service(template: dict[str, Any]) -> None:
    for fn in FUNCTIONS:
        env = template["Resources"][f"{fn}LambdaFunction"]["Properties"]["Environment"]["Variables"]
        assert env["POWERTOOLS_SERVICE_NAME"] == SERVICE
        assert service_name(env) == SERVICE


def test_without_the_setting_the_service_is_the_project() -> None:
    assert service_name({}) == DEFAULT_SERVICE_NAME
    assert service_name({"POWERTOOLS_SERVICE_NAME": "  "}) == DEFAULT_SERVICE_NAME


def test_each_log_group_counts_error_lines_by_service(template: dict[str, Any]) -> None:
    filters = of_type(template, "AWS::Logs::MetricFilter")
    watched = {json.dumps(f["Properties"]["LogGroupName"]) for f in filters.values()}
    assert watched == {json.dumps({"Ref": f"{fn}LogGroup"}) for fn in FUNCTIONS}
    for f in filters.values():
        props = f["Properties"]
        # ERROR is what the pipeline logs for a permanent failure, and only for that (transient ones are WARNING).
        assert props["FilterPattern"] == '{ $.level = "ERROR" }'
        (transform,) = props["MetricTransformations"]
        assert (transform["MetricNamespace"], transform["MetricName"]) == ("KirayImaging", "PermanentFailures")
        assert transform["Dimensions"] == [{"Key": "service", "Value": "$.service"}]


def test_a_burst_of_permanent_failures_raises_an_alarm(template: dict[str, Any]) -> None:
    alarms = of_type(template, "AWS::CloudWatch::Alarm")
    (alarm,) = [a["Properties"] for a in alarms.values() if a["Properties"].get("MetricName") == "PermanentFailures"]
    assert alarm["AlarmName"] == f"{SERVICE}-permanent-failures"
    assert alarm["Namespace"] == "KirayImaging"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": SERVICE}]
    assert (alarm["Statistic"], alarm["Period"], alarm["ComparisonOperator"]) == (
        "Sum", 300, "GreaterThanOrEqualToThreshold",
    )  # fmt: skip
    assert int(alarm["Threshold"]) == 10
    assert alarm["TreatMissingData"] == "notBreaching"
