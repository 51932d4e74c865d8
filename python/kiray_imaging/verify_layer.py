"""`kiray-imaging verify-layer PATH`: the layer build's binary gate, for any layer zip, wheel or folder.

It is the very gate `layer/build.py` runs (``kiray_imaging.tooling.layer_gate``) — ELF64 for the Lambda architecture,
GLIBC ≤ 2.17, abi3 names and wheel tags, no Mach-O or PE — so a layer built elsewhere (or by hand, on a Mac) can be
checked before it is deployed. One line per shared object, then a verdict; exit 0 passed, 1 refused, 2 no such path.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Lambda's names for its architectures; the gate knows both.
ARCHITECTURES = ("x86_64", "arm64")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "verify-layer",
        help="check that a layer zip, wheel or folder holds only native code Lambda can load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", type=Path, nargs="+", help="a layer .zip, a .whl or a folder")
    p.add_argument("--architecture", choices=ARCHITECTURES, default="x86_64", help="the functions' Lambda architecture")


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: the gate and pyelftools are build tooling, which the layer leaves out and the
    # other commands never need.
    try:
        from kiray_imaging.tooling import layer_gate
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] != "elftools":
            raise
        print(
            "verify-layer: the binary gate needs pyelftools, a dependency of kiray-imaging that is missing here: "
            "pip install pyelftools",
            file=sys.stderr,
        )
        return 2
    return layer_gate.report(args.path, sys.stdout, sys.stderr, prog="verify-layer", arch=args.architecture)
