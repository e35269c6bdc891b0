"""Tools for the agent's registry tests (tests/integration/test_agent_registry.py).

`RegistryProcess` runs Debian's docker-registry (distribution 2.8) on
loopback with its own config: storage under a temp dir, optional htpasswd
auth and TLS with a certificate from a CA the test makes with the openssl
CLI (`make_ca`); its access log tells which requests it served. `Proxy`
sits in front of a registry to slow its answers down or cut one connection
short. `image_archive` makes docker-save tarballs of given layers.
Processes run by pid through tests.procs.Processes, never by name.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import select
import socket
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import bcrypt

from tests.procs import Proc, Processes, free_port, port_open, wait_until


def make_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca.crt, server.crt, server.key)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt, ext = (directory / n for n in ("server.key", "server.csr", "server.crt", "server.ext"))
    run = lambda *argv: subprocess.run(argv, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=kran test CA",
        "-keyout", str(ca_key), "-out", str(ca_crt))
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(key), "-out", str(csr))
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(crt))
    return ca_crt, crt, key


class RegistryProcess:
    """docker-registry serving on 127.0.0.1:<port>, data under `workdir`."""

    def __init__(self, processes: Processes, workdir: Path, *, tls: tuple[Path, Path] | None = None,
                 users: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        lines = ["version: 0.1", "log:", "  level: info", "  accesslog:", "    disabled: false",
                 "storage:", "  filesystem:", f"    rootdirectory: {workdir / 'data'}",
                 "  delete:", "    enabled: true", "http:", f"  addr: 127.0.0.1:{self.port}"]
        if tls:
            lines += ["  tls:", f"    certificate: {tls[0]}", f"    key: {tls[1]}"]
        if users:
            htpasswd = workdir / "htpasswd"
            htpasswd.write_text("".join(f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(5)).decode()}\n"
                                        for user, pw in users.items()))
            lines += ["auth:", "  htpasswd:", "    realm: kran-test", f"    path: {htpasswd}"]
        config = workdir / "config.yml"
        config.write_text("\n".join(lines) + "\n")
        self.proc: Proc = processes.start(["docker-registry", "serve", str(config)], "registry")

        def serving() -> bool:
            if not self.proc.alive():
                raise AssertionError(f"docker-registry exited:\n{self.proc.output()}")
            return port_open(self.port)
        wait_until(serving, 20, what=f"docker-registry on port {self.port}")

    def requests(self, method: str, fragment: str) -> list[str]:
        """Access-log lines of `method` requests whose URI contains `fragment`."""
        pattern = re.compile(rf'"{method} (\S*{re.escape(fragment)}\S*) HTTP/1\.1" (\d+)')
        return [m.group(0) for m in pattern.finditer(self.proc.output())]

    def blob_file(self, digest: str) -> Path:
        """Where the registry keeps a blob on disk."""
        hexpart = digest.removeprefix("sha256:")
        return self.workdir / "data/docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"


class Proxy:
    """A TCP relay to `target_port` that can slow the answers down and cut one connection short.

    `rate` limits bytes per second sent back to each client (0: no limit);
    `drop_after`, when set, closes the first connection whose answers pass
    that many bytes (once). Runs in daemon threads; close() stops it.
    """

    def __init__(self, target_port: int, rate: int = 0, drop_after: int = 0) -> None:
        self.target_port, self.rate, self.drop_after = target_port, rate, drop_after
        self.dropped = False
        self.port = free_port()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._open: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._open += [client, upstream]
            threading.Thread(target=self._relay, args=(client, upstream), daemon=True).start()

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        sent = 0
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([client, upstream], [], [], 0.2)
                for side in ready:
                    data = side.recv(16384)
                    if not data:
                        return
                    if side is client:
                        upstream.sendall(data)
                        continue
                    if self.drop_after and not self.dropped and sent + len(data) > self.drop_after:
                        self.dropped = True
                        client.sendall(data[: self.drop_after - sent])
                        return
                    client.sendall(data)
                    sent += len(data)
                    if self.rate:
                        time.sleep(len(data) / self.rate)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()

    def close(self) -> None:
        """Stop accepting and close every connection."""
        self._stop.set()
        self._server.close()
        for sock in self._open:
            sock.close()


def _layer(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def image_archive(tag: str, layers: list[dict[str, bytes]]) -> bytes:
    """A docker-save (v1.2) tarball of one image tagged `tag` with these layers (file name -> content)."""
    tars = [_layer(files) for files in layers]
    diff_ids = ["sha256:" + hashlib.sha256(t).hexdigest() for t in tars]
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"layer {i}"} for i in range(len(tars))],
    }).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    names = [f"{d.removeprefix('sha256:')}/layer.tar" for d in diff_ids]
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": names}]).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in [(config_name, config), ("manifest.json", manifest), *zip(names, tars)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
