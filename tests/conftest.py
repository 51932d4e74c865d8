"""Fixtures shared by more than one test folder. Folder-specific fixtures belong in that folder's conftest.py."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from scripts.local_aws import aws_env, moto_server

# The photo corpus lives beside the repository (it is shared by every checkout and too big for git).
CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The real-photo corpus; tests that need it are skipped where it is absent (CI has it)."""
    if not CORPUS.is_dir():
        pytest.skip(f"photo corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server (S3 and friends) on 127.0.0.1 for the session; stopped at the end."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def local_aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Points boto3 (and anything it spawns) at moto with fake credentials; resets moto's state per test."""
    for name, value in aws_env(moto_endpoint, base={}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    boto3.DEFAULT_SESSION = None
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).close()
    return moto_endpoint
