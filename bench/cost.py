"""Lambda cost per million uploads, on paper, from the CPU time `make bench` measured (bench/speed_report.py adds the
table to bench/results/bench.md; docs/cost.md explains it).

The model, stated so it can be argued with:
- one upload = two invocations (thumbnail, medium), each rendering from its own decode, as the functions do;
- a render is single-threaded and CPU-bound; Lambda gives 1 vCPU at 1769 MB and a proportional share below, so at
  M MB the render takes `cpu_ms × 1769 / M` (never less than `cpu_ms`);
- S3 download + upload and the handler's own work add `IO_MS` per invocation (of the order `make demo` measures
  against a local S3, docs/cost.md; in-region S3 is of that order too), the same for every tool;
- this machine's core is as fast as Lambda's (both are recent x86-64 server cores; the ratio between tools is the
  robust part, the absolute figure is an estimate);
- x86_64 on-demand prices, us-east-1, first pricing tier: $0.0000166667 per GB-second, $0.20 per million requests,
  billed per millisecond; no free tier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

PRICE_PER_GB_SECOND = 0.0000166667
PRICE_PER_REQUEST = 0.20 / 1_000_000
FULL_VCPU_MB = 1769
MEMORY_SIZES_MB = (1024, 1769)
IO_MS = 60.0
UPLOADS = 1_000_000


def invocation_ms(cpu_ms: float, memory_mb: int) -> float:
    return cpu_ms * max(1.0, FULL_VCPU_MB / memory_mb) + IO_MS


def cost_per_million(cpu_ms_per_invocation: Sequence[float], memory_mb: int) -> float:
    """Dollars for UPLOADS uploads, each running one invocation per entry of `cpu_ms_per_invocation`."""
    per_upload = sum(
        memory_mb / 1024 * invocation_ms(cpu, memory_mb) / 1000 * PRICE_PER_GB_SECOND + PRICE_PER_REQUEST
        for cpu in cpu_ms_per_invocation
    )
    return per_upload * UPLOADS


def cost_table(cpu_ms: Mapping[str, Sequence[float]]) -> str:
    """`cpu_ms`: tool label → median CPU ms per invocation (thumbnail, medium), averaged over the corpus."""
    head = ["tool", "thumbnail + medium CPU ms", *(f"$ per million uploads at {m} MB" for m in MEMORY_SIZES_MB)]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for label, invocations in cpu_ms.items():
        cells = [" + ".join(f"{ms:.0f}" for ms in invocations)]
        cells += [f"{cost_per_million(invocations, m):.2f}" for m in MEMORY_SIZES_MB]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
