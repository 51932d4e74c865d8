"""What the rehearsal says on a machine that lacks something its sandbox needs: one line, naming what to install."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from scripts.rehearse import tools

ROOT = Path(__file__).resolve().parents[2]


def _one_line(error: pytest.ExceptionInfo[tools.Missing]) -> str:
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("rehearse: ")
    return message


def test_without_bubblewrap_it_says_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "bwrap" else real(name))
    with pytest.raises(tools.Missing) as error:
        tools.check_host()
    assert "apt-get install bubblewrap" in _one_line(error)


def test_without_cpython_3_12_it_says_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(tools.Missing) as error:
        tools.find_python(str(tmp_path / "no-python"))
    assert "pyenv install 3.12" in _one_line(error)


def test_without_go_it_says_where_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tools, "RIE", tmp_path / "bin" / "aws-lambda-rie")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(tools.Missing) as error:
        tools.install(tools.find_python())
    assert "https://go.dev/dl/" in _one_line(error)


def test_the_cli_prints_that_line_and_fails(tmp_path: Path) -> None:
    # As `make rehearse` would on a machine without CPython 3.12: exit status 1, the one line on stderr.
    env = {"PATH": "/usr/bin:/bin", "PYENV_ROOT": str(tmp_path), "REHEARSE_PYTHON": str(tmp_path / "none")}
    result = subprocess.run([sys.executable, "-m", "scripts.rehearse", "--install-tools"], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "rehearse: a self-contained CPython 3.12 (the functions' runtime) is needed: pyenv install 3.12 (or set"
        " REHEARSE_PYTHON to one)"
    ]
