"""docs/integrating.md shows the consumer the contract's tests compile (tests/contract/consumer.ts, with tsc --strict
against the packed @kiray/imaging-contract): the page's TypeScript consumer is that file, character for character."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_pages_consumer_is_the_one_that_compiles() -> None:
    page = (ROOT / "docs" / "integrating.md").read_text()
    blocks = re.findall(r"^```ts\n(.*?)^```$", page, flags=re.M | re.S)
    consumer = (ROOT / "tests" / "contract" / "consumer.ts").read_text()
    assert blocks, "no TypeScript on the page"
    assert blocks[0] == consumer
    assert "tests/contract/consumer.ts" in page
