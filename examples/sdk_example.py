"""The kran SDK in a few lines: nodes, import, list, remove.

Run with KRAN_HOST=127.0.0.1:7640 .venv/bin/python examples/sdk_example.py
"""

import io
import tarfile

import kran.client


def rootfs_tarball() -> io.BytesIO:
    """A one-file root filesystem, as `tar -C rootfs -c .` would make it."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        greeting = b"hello from kran\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(greeting)
        tar.addfile(info, io.BytesIO(greeting))
    data.seek(0)
    return data


client = kran.client.from_env()

for node in client.nodes.list():
    print(f"node {node.name} ({node.short_id}): {node.state}")

image = client.images.import_image(rootfs_tarball(), reference="sdk-example:latest",
                                   changes=['CMD ["/hello.txt"]'], message="from the SDK")
print(f"imported {image.id} as {image.tags} on {image.node_name}")

for listed in client.images.list(name="sdk-example"):
    print(f"listed {listed.short_id} {listed.tags} {listed.attrs['Size']} bytes")

for result in client.images.remove("sdk-example:latest"):
    print(result)

client.close()
