"""The layer gate as a script, where kiray_imaging itself cannot be imported (a Mac building the Linux wheel):

    python python/kiray_imaging/tooling [--architecture arm64] PATH [PATH...]

and the one loader of the gate without the package: layer/build.py and the tests call ``load_gate``. Standard
library only, since it runs before anything of the package can. Exit status 0 passed, 1 refused, 2 bad invocation.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

# A private name, never kiray_imaging.tooling: importing that would run kiray_imaging/__init__ and its _core.
PACKAGE = "kiray_imaging_tooling"
FOLDER = Path(__file__).resolve().parent


def load_gate() -> ModuleType:
    """This folder loaded by path as the package PACKAGE; its layer_gate module (the gate's public API)."""
    name = f"{PACKAGE}.layer_gate"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        PACKAGE, FOLDER / "__init__.py", submodule_search_locations=[str(FOLDER)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {FOLDER}")
    package = importlib.util.module_from_spec(spec)
    # Registered before it runs: relative imports and @dataclass look the package up in sys.modules.
    sys.modules[PACKAGE] = package
    try:
        spec.loader.exec_module(package)
        return importlib.import_module(name)
    except BaseException as exc:
        for loaded in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[loaded]
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "elftools":
            raise ModuleNotFoundError(
                "the binary gate needs pyelftools: `make setup` installs it in a checkout (requirements-dev.txt), "
                "`pip install kiray-imaging` brings it as a dependency, or `pip install pyelftools`",
                name="elftools",
            ) from exc
        raise


if __name__ == "__main__":
    if sys.path and Path(sys.path[0]).resolve() == FOLDER:
        del sys.path[0]  # run as `python .../tooling`: its modules must not be importable as top-level names
    try:
        gate = load_gate()
    except ModuleNotFoundError as exc:
        print(f"gate: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    raise SystemExit(gate.main())
