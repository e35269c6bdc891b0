#!/usr/bin/env bash
# Build the rootfs tarballs of kran's two local images into OUTDIR:
#   OUTDIR/busybox.tar      Debian's static busybox with every applet linked
#   OUTDIR/hello-world.tar  /hello, a static program that prints a greeting
# The archives are reproducible (sorted names, fixed owners and times), so the
# image ids stay the same from one build to the next.
# Usage: deploy/images/build.sh OUTDIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?usage: build.sh OUTDIR}
busybox_bin=${BUSYBOX:-/bin/busybox}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
umask 022

# pack DIR TARBALL: a reproducible tar of DIR's contents, written atomically.
pack() {
    tar -C "$1" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
        --format=gnu -cf "$2.tmp" .
    mv "$2.tmp" "$2"
}

build_busybox() {
    local root=$work/busybox
    # Only the static build works alone in a rootfs; the dynamic one needs libc.
    if ! file_is_static "$busybox_bin"; then
        echo "build.sh: $busybox_bin is not statically linked (install busybox-static)" >&2
        exit 1
    fi
    mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" \
        "$root/root" "$root/home"
    install -m 0755 "$busybox_bin" "$root/bin/busybox"
    # Each applet is a relative symlink to /bin/busybox, so it resolves the
    # same inside the image root and inside a container.
    local path dir up
    while read -r path; do
        [ "$path" = bin/busybox ] && continue
        dir=$(dirname "$path")
        mkdir -p "$root/$dir"
        if [ "$dir" = . ]; then up=""; else up=$(echo "$dir/" | sed 's|[^/]*/|../|g'); fi
        ln -sfn "${up}bin/busybox" "$root/$path"
    done < <("$busybox_bin" --list-full)
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
        >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\nnobody:x:65534:\n' >"$root/etc/group"
    chmod 1777 "$root/tmp"
    chmod 0700 "$root/root"
    pack "$root" "$out/busybox.tar"
}

build_hello() {
    local root=$work/hello-world
    mkdir -p "$root"
    gcc -static -Os -s -o "$root/hello" "$here/hello.c"
    chmod 0755 "$root/hello"
    pack "$root" "$out/hello-world.tar"
}

# file_is_static BINARY: true when BINARY has no ELF interpreter.
file_is_static() {
    ! LC_ALL=C readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'
}

build_busybox
build_hello
echo "built $out/busybox.tar $out/hello-world.tar"
