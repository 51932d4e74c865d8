"""The cost model of bench/cost.py, by hand: numbers a reader can redo on paper."""

from __future__ import annotations

import pytest

from bench import cost


def test_a_full_vcpu_runs_at_the_measured_speed_and_less_memory_slower() -> None:
    assert cost.invocation_ms(100, 1769) == pytest.approx(100 + cost.IO_MS)
    assert cost.invocation_ms(100, 1024) == pytest.approx(100 * 1769 / 1024 + cost.IO_MS)
    assert cost.invocation_ms(100, 3008) == pytest.approx(100 + cost.IO_MS), "more than one vCPU: one thread"


def test_cost_per_million_uploads() -> None:
    # 100 ms of CPU at 1769 MB: 160 ms x 1.7275 GB = 0.2764 GB-s = $4.607e-6, plus $0.2e-6 for the request.
    assert cost.cost_per_million([100], 1769) == pytest.approx(4.807, abs=0.001)
    # Two invocations cost the sum of each.
    both = cost.cost_per_million([100, 200], 1024)
    assert both == pytest.approx(cost.cost_per_million([100], 1024) + cost.cost_per_million([200], 1024))


def test_the_table_has_a_row_per_tool() -> None:
    table = cost.cost_table({"ours": [60, 110], "sharp": [70, 120]})
    rows = table.splitlines()[2:]
    assert [r.split("|")[1].strip() for r in rows] == ["ours", "sharp"]
    assert rows[0].split("|")[2].strip() == "60 + 110"
