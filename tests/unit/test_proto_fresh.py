"""The generated gRPC code under kran/api/v1 matches what proto/ generates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO / "proto"
GENERATED = REPO / "kran" / "api" / "v1"
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def _generated_files(root: Path) -> dict[str, bytes]:
    return {
        path.name: path.read_bytes()
        for path in sorted(root.iterdir())
        if path.name.endswith(SUFFIXES)
    }


def test_generated_code_matches_proto(tmp_path: Path) -> None:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "kran/api/v1").glob("*.proto"))
    assert protos, "no .proto files under proto/kran/api/v1"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_ROOT}",
         f"--python_out={tmp_path}", f"--grpc_python_out={tmp_path}", f"--pyi_out={tmp_path}",
         *protos],
        cwd=PROTO_ROOT, check=True, capture_output=True,
    )
    fresh = _generated_files(tmp_path / "kran" / "api" / "v1")
    committed = _generated_files(GENERATED)

    assert sorted(committed) == sorted(fresh), "generated files differ from proto/; run `make proto`"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"kran/api/v1 is stale ({', '.join(stale)}); run `make proto`"
