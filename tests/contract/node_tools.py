"""Where the contract's Node tools are, and how to run npm quietly: shared by conftest.py and test_types.py."""

from __future__ import annotations

import os
from pathlib import Path

CONTRACT = Path(__file__).resolve().parents[2] / "contract"
NODE_MODULES = CONTRACT / "node_modules"
TSC = NODE_MODULES / ".bin" / "tsc"
# Without these, npm would ask the registry whether it is up to date on every call.
NPM_ENV = {**os.environ, "npm_config_update_notifier": "false", "npm_config_fund": "false"}
