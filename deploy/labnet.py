"""The lab's network, with pyroute2: a bridge in the root namespace, and per host a network
namespace joined to it by a veth pair.

Nothing here routes, forwards or masquerades: the hosts reach each other and the
bridge's address (where the controllers listen), nothing else.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
from pathlib import Path

from pyroute2 import IPRoute, NetlinkError, NetNS, netns

from kran import errors

NETNS_DIR = Path("/run/netns")
MAX_IFNAME = 15  # the longest interface name Linux takes


def _index(ipr: IPRoute, ifname: str) -> int | None:
    found = ipr.link_lookup(ifname=ifname)
    return found[0] if found else None


def address_in_use(network: ipaddress.IPv4Network, bridge: str) -> str:
    """The interface other than bridge that holds an address in network, "" if none."""
    with IPRoute() as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        for addr in ipr.get_addr(family=2):
            address = ipaddress.ip_address(addr.get_attr("IFA_ADDRESS"))
            name = names.get(addr["index"], "?")
            if address in network and name != bridge:
                return name
    return ""


def create_bridge(bridge: str, gateway: str, prefixlen: int) -> None:
    """Make the bridge (if missing) with the gateway address, up."""
    with IPRoute() as ipr:
        if _index(ipr, bridge) is None:
            ipr.link("add", ifname=bridge, kind="bridge")
        index = _index(ipr, bridge)
        try:
            ipr.addr("add", index=index, address=gateway, prefixlen=prefixlen)
        except NetlinkError as err:
            if err.code != errno.EEXIST:
                raise
        ipr.link("set", index=index, state="up")


def add_host(bridge: str, name: str, address: str, prefixlen: int) -> None:
    """Namespace `name` with eth0 (address/prefixlen) and lo up, joined to the bridge by the veth `name`."""
    if not (NETNS_DIR / name).exists():
        netns.create(name)
    with IPRoute() as ipr:
        if _index(ipr, name) is None:
            ipr.link("add", ifname=name, kind="veth", peer={"ifname": "eth0", "net_ns_fd": name})
        ipr.link("set", index=_index(ipr, name), master=_index(ipr, bridge), state="up")
    with NetNS(name) as ns:
        ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
        eth0 = ns.link_lookup(ifname="eth0")[0]
        try:
            ns.addr("add", index=eth0, address=address, prefixlen=prefixlen)
        except NetlinkError as err:
            if err.code != errno.EEXIST:
                raise
        ns.link("set", index=eth0, state="up")


def set_link(name: str, up: bool) -> None:
    """Bring the root-side veth of a host up or down (down cuts the host off)."""
    with IPRoute() as ipr:
        index = _index(ipr, name)
        if index is None:
            raise errors.NotFound(f"link {name} not found: is the lab up?")
        ipr.link("set", index=index, state="up" if up else "down")


def link_up(name: str) -> bool:
    """Whether the link exists and is administratively up."""
    with IPRoute() as ipr:
        index = _index(ipr, name)
        return index is not None and bool(ipr.get_links(index)[0]["flags"] & 1)


def lab_netns(lab: str) -> list[str]:
    """The network namespaces of lab `lab`'s hosts (<lab>-hN) that exist now."""
    pattern = re.compile(rf"^{re.escape(lab)}-h\d+$")
    names = netns.listnetns() if NETNS_DIR.is_dir() else []
    return sorted(name for name in names if pattern.match(name))


def lab_links(lab: str) -> list[str]:
    """The links of lab `lab` in the root namespace: its bridge <lab>0 and veths <lab>-hN."""
    pattern = re.compile(rf"^{re.escape(lab)}(0|-h\d+)$")
    with IPRoute() as ipr:
        names = [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]
    return sorted(name for name in names if pattern.match(name))


def remove(lab: str) -> None:
    """Remove lab `lab`'s namespaces, veths and bridge (whatever of them exists)."""
    for name in lab_netns(lab):
        netns.remove(name)
    with IPRoute() as ipr:
        # The veths before the bridge; a veth whose peer's namespace just went may be gone already.
        for name in sorted(lab_links(lab), key=lambda n: n == f"{lab}0"):
            index = _index(ipr, name)
            if index is None:
                continue
            try:
                ipr.link("del", index=index)
            except NetlinkError as err:
                if err.code != errno.ENODEV:
                    raise


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_address(address: str) -> str:
    """address if its port is free, else the same host with a port the kernel picks."""
    host, port = address.rsplit(":", 1)
    if port_free(host, int(port)):
        return address
    with socket.socket() as probe:
        probe.bind((host, 0))
        return f"{host}:{probe.getsockname()[1]}"
