"""Regenerate the committed gRPC stubs in ``src/sandtrade/v1`` from ``proto/sandtrade/v1``.

Run ``python -m sandtrade.rpc.codegen`` from the repository root after changing a .proto file
(needs grpcio-tools, part of the ``test`` extra). ``tests/rpc/test_stubs.py`` fails when the
committed stubs differ from what the protos generate.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["generate"]

ROOT = Path(__file__).resolve().parents[3]


def generate(out_dir: Path, proto_root: Path = ROOT / "proto") -> list[Path]:
    """Run protoc (from grpcio-tools) over every proto; returns the files written."""
    import grpc_tools
    from grpc_tools import protoc

    protos = sorted(str(p.relative_to(proto_root))
                    for p in (proto_root / "sandtrade" / "v1").glob("*.proto"))
    include = Path(grpc_tools.__file__).parent / "_proto"
    args = ["protoc", f"-I{proto_root}", f"-I{include}", f"--python_out={out_dir}",
            f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}", *protos]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed: {' '.join(args)}")
    return sorted((out_dir / "sandtrade" / "v1").glob("*_pb2*.py*"))


if __name__ == "__main__":
    written = generate(ROOT / "src")
    print(f"wrote {len(written)} files to src/sandtrade/v1", file=sys.stderr)
