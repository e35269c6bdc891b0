"""A multi-host kran cluster on one machine, for tests and for trying kran out.

Each host hN is a network namespace <name>-hN with eth0 at <subnet>.(10+N) on
the bridge <name>0, whose address <subnet>.1 is the lab's gateway; an agent
runs inside each (through nsenter, so it shares the machine's mounts) with its
own state directory and cgroup parent. A 3-member etcd cluster on 127.0.0.1
and the controllers (on the gateway address) run in the root namespace.
Nothing is routed, forwarded or masqueraded: traffic stays in the lab.

    python -m deploy.lab up [--hosts N] [--controllers N] [--name NAME]
    python -m deploy.lab status [--name NAME]
    python -m deploy.lab down [--name NAME]

`up` writes <root>/<name>/lab.json (pids, addresses, ports), so that `down`
from another process removes every trace. Tests use the Lab class, and its
failure tools: kill or pause an agent, cut a host off, kill a controller or
an etcd member.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

from deploy import labnet, labprocs, labstate
from deploy.labstate import ControllerProcess, EtcdMember, Host
from kran import errors
from kran.defaults import AGENT_METRICS_PORT, CONTROLLER_METRICS_PORT, CONTROLLER_PORT, HOST_ENV
from tests.procs import etcd_healthy, pid_alive, unmount_leftovers, wait_until

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0
STOP_GRACE = 10.0
# etcd's ports come from a block picked by the lab's name in this range, away from
# `make up`'s 2379/2380 and from the ephemeral ports the kernel hands out.
ETCD_PORTS = range(12400, 20400)
PORT_STEP = 10  # between the controllers' ports: 7640, 7650, 7660 ...
# The images every host gets, with the command a container runs by default.
IMAGES = (("busybox", '["sh"]'), ("hello-world", '["/hello"]'))
_NAME = re.compile(r"[a-z][a-z0-9]*")
_FATAL = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


class Lab:
    """The lab named name: hosts h1..hN, etcd_members etcd members and controllers controllers."""

    def __init__(self, name: str = "kranlab", hosts: int = 3, controllers: int = 3, etcd_members: int = 3,
                 root: Path = Path("/var/lib/kran-lab"), subnet: str = "10.213.0.0/24",
                 node_ttl: int = 4) -> None:
        try:
            network = ipaddress.ip_network(subnet)
        except ValueError as exc:
            raise errors.InvalidArgument(f"subnet {subnet!r}: {exc}") from None
        if not _NAME.fullmatch(name) or len(f"{name}-h{hosts}") > labnet.MAX_IFNAME:
            raise errors.InvalidArgument(
                f"lab name {name!r}: expected a lowercase letter then letters or digits, short enough "
                f"for the interface name {name}-h{hosts} to fit in {labnet.MAX_IFNAME} characters")
        if hosts < 1 or controllers < 1 or etcd_members < 1:
            raise errors.InvalidArgument("a lab needs at least one host, controller and etcd member")
        if network.version != 4 or network.num_addresses < 12 + hosts:
            raise errors.InvalidArgument(f"subnet {subnet}: an IPv4 network with room for {hosts} hosts "
                                         f"at .11 onwards is needed")
        if node_ttl < 2:
            raise errors.InvalidArgument("node_ttl must be at least 2 seconds")
        self.name = name
        self.dir = root.absolute() / name
        self.network = network
        self.node_ttl = node_ttl
        self.bridge = f"{name}0"
        self.gateway = str(network[1])
        self.hosts = [Host(f"h{n}", str(network[10 + n]), f"{name}-h{n}", self.dir / f"h{n}")
                      for n in range(1, hosts + 1)]
        self.etcd = [EtcdMember(f"{name}-etcd{n}", self.dir / f"etcd-{n}") for n in range(1, etcd_members + 1)]
        self.controllers = [
            ControllerProcess(f"{self.gateway}:{CONTROLLER_PORT + PORT_STEP * n}",
                              f"{self.gateway}:{CONTROLLER_METRICS_PORT + PORT_STEP * n}",
                              self.dir / f"controller-{n + 1}")
            for n in range(controllers)]
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._load()

    # -- what others read --

    @property
    def controller_endpoints(self) -> list[str]:
        """Every controller's gRPC address; KRAN_HOST is their comma-separated list."""
        return [controller.endpoint for controller in self.controllers]

    def env(self) -> dict[str, str]:
        """os.environ with KRAN_HOST naming every controller of the lab."""
        return {**os.environ, HOST_ENV: ",".join(self.controller_endpoints)}

    def host(self, name: str) -> Host:
        """The host called name ("h1")."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise errors.NotFound(f"lab {self.name} has no host {name!r} (it has "
                              f"{', '.join(h.name for h in self.hosts)})")

    @property
    def state_file(self) -> Path:
        return self.dir / labstate.STATE_FILE

    # -- up and down --

    def up(self) -> None:
        """Start everything, wait until every host is Ready and give each busybox and hello-world.

        After a failure, down() removes what was started (the logs are in <dir>/logs until then).
        """
        if self.state_file.exists():
            raise errors.FailedPrecondition(
                f"lab {self.name} is already up (or was not taken down): {self.state_file} exists; "
                f"run `python -m deploy.lab down --name {self.name}` first")
        images = self._preflight()
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        self._save()
        labnet.create_bridge(self.bridge, self.gateway, self.network.prefixlen)
        for host in self.hosts:
            labnet.add_host(self.bridge, host.netns, host.address, self.network.prefixlen)
            host.state_dir.mkdir(exist_ok=True)
        self._pick_ports()
        for index in range(len(self.etcd)):
            self._spawn_etcd(index)
        for index in range(len(self.etcd)):
            self._await_etcd(index)
        for index in range(len(self.controllers)):
            self._spawn_controller(index)
        for index in range(len(self.controllers)):
            self._await_controller(index)
        for host in self.hosts:
            self._spawn_agent(host)
        for host in self.hosts:
            self._await_agent(host)
        self.wait_ready(timeout=START_TIMEOUT)
        self._load_images(images)

    def down(self) -> None:
        """Remove every trace of the lab: processes (by pid), mounts, cgroups, namespaces, links, files.

        Works after a partial up() and when the lab is already down.
        """
        self._load()
        # The agents first, so that nothing starts a container (a restart policy) while
        # the containers are killed; the shims outlive their agent by design.
        labprocs.stop_all(self._ours(host.agent_pid) for host in self.hosts)
        cgroups = re.compile(rf"{re.escape(self.name)}-h\d+")
        for group in labprocs.cgroup_groups(cgroups):
            labprocs.kill_cgroup(group)
        # What is left in the hosts' namespaces: the shims (whose containers are gone) and forkservers.
        for name in labnet.lab_netns(self.name):
            labprocs.stop_all(labprocs.pids_in_netns(labnet.NETNS_DIR / name), grace=3)
        labprocs.stop_all(self._ours(controller.pid) for controller in self.controllers)
        for member in self.etcd:
            # One at a time: a stopping leader hands over to a live member, which stalls
            # for seconds when every member is stopping at once.
            labprocs.stop_all([self._ours(member.pid)])
        for process in self._children.values():
            process.poll()
        self._children.clear()
        unmount_leftovers(self.dir)
        for group in labprocs.cgroup_groups(cgroups):
            labprocs.remove_cgroup(group)
        labnet.remove(self.name)
        shutil.rmtree(self.dir, ignore_errors=True)
        try:
            self.dir.parent.rmdir()  # the root, once no lab is left in it
        except OSError:
            pass
        for host in self.hosts:
            host.agent_pid = 0
        for process in (*self.etcd, *self.controllers):
            process.pid = 0

    # -- failure tools --

    def kill_agent(self, host: str, sig: int = signal.SIGKILL) -> None:
        """Send sig to host's agent; a fatal one is waited for (its containers keep running)."""
        target = self.host(host)
        self._signal(target.agent_pid, sig, f"the agent of {host}")
        if sig in _FATAL:
            target.agent_pid = 0
            self._save()

    def pause_agent(self, host: str) -> None:
        """SIGSTOP host's agent: it stops heartbeating, as a hung host does."""
        self._signal(self.host(host).agent_pid, signal.SIGSTOP, f"the agent of {host}")

    def resume_agent(self, host: str) -> None:
        """SIGCONT host's agent."""
        self._signal(self.host(host).agent_pid, signal.SIGCONT, f"the agent of {host}")

    def start_agent(self, host: str) -> None:
        """Start host's agent again (same node id and state); it re-adopts its containers."""
        target = self.host(host)
        if self._ours(target.agent_pid):
            raise errors.FailedPrecondition(f"the agent of {host} is running (pid {target.agent_pid})")
        self._spawn_agent(target)
        self._await_agent(target)

    def cut(self, host: str) -> None:
        """Cut host off: its veth goes down on the bridge side."""
        labnet.set_link(self.host(host).netns, up=False)

    def restore(self, host: str) -> None:
        """Join host to the bridge again."""
        labnet.set_link(self.host(host).netns, up=True)

    def kill_controller(self, index: int) -> None:
        """SIGKILL controller index (from 0)."""
        self._signal(self.controllers[index].pid, signal.SIGKILL, f"controller {index}")
        self.controllers[index].pid = 0
        self._save()

    def start_controller(self, index: int) -> None:
        """Start controller index again on its address and state."""
        if self._ours(self.controllers[index].pid):
            raise errors.FailedPrecondition(f"controller {index} is running")
        self._spawn_controller(index)
        self._await_controller(index)

    def kill_etcd(self, index: int) -> None:
        """SIGKILL etcd member index (from 0)."""
        self._signal(self.etcd[index].pid, signal.SIGKILL, f"etcd member {index}")
        self.etcd[index].pid = 0
        self._save()

    def start_etcd(self, index: int) -> None:
        """Start etcd member index again on its data; it rejoins the cluster."""
        if self._ours(self.etcd[index].pid):
            raise errors.FailedPrecondition(f"etcd member {index} is running")
        self._spawn_etcd(index)
        self._await_etcd(index)

    def heal(self, timeout: float = START_TIMEOUT) -> None:
        """Undo whatever the failure tools did: start what is not running, continue paused agents,
        join every host again; then wait until every host is Ready."""
        for index, member in enumerate(self.etcd):
            if not self._ours(member.pid):
                self.start_etcd(index)
        for index, controller in enumerate(self.controllers):
            if not self._ours(controller.pid):
                self.start_controller(index)
        for host in self.hosts:
            labnet.set_link(host.netns, up=True)
            if self._ours(host.agent_pid):
                os.kill(host.agent_pid, signal.SIGCONT)
            else:
                self.start_agent(host.name)
        self.wait_ready(timeout=timeout)

    def wait_ready(self, hosts: int | None = None, timeout: float = 30) -> None:
        """Wait until `hosts` of the lab's hosts (default: all) show Ready."""
        want = len(self.hosts) if hosts is None else hosts
        names = {host.name for host in self.hosts}
        seen: dict[str, str] = {}

        def ready() -> bool:
            seen.clear()
            seen.update(self.node_states())
            return sum(seen.get(name) == "ready" for name in names) >= want
        try:
            wait_until(ready, timeout, interval=0.2, what=f"{want} host(s) of lab {self.name} to be Ready")
        except (AssertionError, errors.Unavailable) as exc:
            raise errors.Unavailable(f"{exc}; nodes: {seen or 'none'}; logs in {self.dir / 'logs'}") from None

    def node_states(self) -> dict[str, str]:
        """Each node's hostname and state ("ready", "down"), from the first controller that answers."""
        # grpc is loaded only when a controller is asked: making namespaces forks (pyroute2).
        from kran.client import Client  # noqa: PLC0415

        for controller in self.controllers:
            if not self._ours(controller.pid):
                continue
            try:
                with Client(controller.endpoint) as client:
                    return {node.name: node.state for node in client.nodes.list()}
            except errors.KranError:
                continue
        raise errors.Unavailable(f"no controller of lab {self.name} answers")

    # -- processes --

    def _ours(self, pid: int) -> int:
        """pid if it is alive and one of this lab's processes (a reused pid is not), else 0."""
        return pid if pid > 0 and pid_alive(pid) and f"{self.dir}/" in labprocs.command_line(pid) else 0

    def _signal(self, pid: int, sig: int, what: str) -> None:
        if not self._ours(pid):
            raise errors.FailedPrecondition(f"{what} is not running")
        os.kill(pid, sig)
        if sig in _FATAL:
            os.kill(pid, signal.SIGCONT)  # a paused process acts on its SIGTERM only once continued
            wait_until(lambda: not pid_alive(pid), STOP_GRACE, interval=0.02, what=f"{what} to exit")
            if pid in self._children:
                self._children.pop(pid).wait()

    def _spawn(self, argv: list[str], log: str) -> int:
        process = labprocs.spawn(argv, self.dir / "logs" / f"{log}.log")
        self._children[process.pid] = process
        return process.pid

    def _await(self, pid: int, address: str, what: str, log: str, timeout: float = START_TIMEOUT) -> None:
        """Wait until pid listens on address (in its own namespace); its log in the error if it does not."""
        host, port = address.rsplit(":", 1)
        deadline = time.monotonic() + timeout
        while not labprocs.listening(pid, host, int(port)):
            if not pid_alive(pid):
                problem = f"{what} exited"
            elif time.monotonic() > deadline:
                problem = f"{what} does not listen on {address} after {timeout:.0f} s"
            else:
                time.sleep(0.05)
                continue
            tail = (self.dir / "logs" / f"{log}.log").read_text(errors="replace")[-3000:]
            raise errors.Unavailable(f"{problem}; the end of its log:\n{tail}")

    def _spawn_etcd(self, index: int) -> None:
        member = self.etcd[index]
        peers = ",".join(f"{m.name}=http://127.0.0.1:{m.peer_port}" for m in self.etcd)
        client, peer = f"http://{member.endpoint}", f"http://127.0.0.1:{member.peer_port}"
        member.pid = self._spawn([
            "etcd", f"--name={member.name}", f"--data-dir={member.data_dir}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster={peers}", "--initial-cluster-state=new",
            f"--initial-cluster-token={self.name}-lab", "--logger=zap"], f"etcd-{index + 1}")
        self._save()

    def _await_etcd(self, index: int) -> None:
        member = self.etcd[index]
        self._await(member.pid, member.endpoint, f"etcd member {member.name}", f"etcd-{index + 1}")
        wait_until(lambda: etcd_healthy(member.endpoint), START_TIMEOUT, interval=0.1,
                   what=f"etcd member {member.name} to be healthy")

    def _spawn_controller(self, index: int) -> None:
        controller = self.controllers[index]
        controller.pid = self._spawn([
            str(BIN / "kran-controller"), f"--listen={controller.endpoint}",
            f"--metrics-addr={controller.metrics_addr}", f"--state-dir={controller.state_dir}",
            f"--etcd={','.join(m.endpoint for m in self.etcd)}", f"--node-ttl={self.node_ttl}"],
            f"controller-{index + 1}")
        self._save()

    def _await_controller(self, index: int) -> None:
        controller = self.controllers[index]
        self._await(controller.pid, controller.endpoint, f"controller {index}", f"controller-{index + 1}")

    def _spawn_agent(self, host: Host) -> None:
        # nsenter execs the agent: the pid is the agent's; only the network namespace changes.
        host.agent_pid = self._spawn([
            "nsenter", f"--net={labnet.NETNS_DIR / host.netns}", "--", str(BIN / "kran-agent"),
            f"--hostname={host.name}", f"--state-dir={host.state_dir}", f"--cgroup-parent={host.netns}",
            f"--listen={host.endpoint}", f"--advertise-addr={host.endpoint}",
            f"--metrics-addr={host.address}:{AGENT_METRICS_PORT}",
            f"--controller={','.join(self.controller_endpoints)}"], host.name)
        self._save()

    def _await_agent(self, host: Host) -> None:
        self._await(host.agent_pid, host.endpoint, f"the agent of {host.name}", host.name)

    # -- setting up --

    def _preflight(self) -> Path:
        """Check what up() needs before anything is made; the images directory."""
        if os.geteuid() != 0:
            raise errors.FailedPrecondition("the lab needs root: it makes namespaces, links and mounts")
        for program in ("etcd", "nsenter"):
            if shutil.which(program) is None:
                raise errors.FailedPrecondition(f"{program} is not installed; run `make deps`")
        for program in ("kran", "kran-controller", "kran-agent"):
            if not (BIN / program).exists():
                raise errors.FailedPrecondition(f"{BIN / program} is missing; run `make deps`")
        images = Path(os.environ.get("KRAN_IMAGES_DIR") or REPO / "out" / "images")
        for image, _ in IMAGES:
            if not (images / f"{image}.tar").is_file():
                raise errors.FailedPrecondition(f"{images / image}.tar is missing; run `make images` "
                                                "(or set KRAN_IMAGES_DIR)")
        if labnet.lab_links(self.name) or labnet.lab_netns(self.name):
            raise errors.FailedPrecondition(
                f"a lab named {self.name} is up (its links or namespaces exist), maybe under another "
                "root; take it down first, or give this one another name")
        holder = labnet.address_in_use(self.network, self.bridge)
        if holder:
            raise errors.FailedPrecondition(f"subnet {self.network} is in use on {holder}; "
                                            "give the lab another subnet")
        return images

    def _pick_ports(self) -> None:
        """etcd's ports from a free block picked by the lab's name; the controllers' where free."""
        width = 2 * len(self.etcd)
        blocks = len(ETCD_PORTS) // width
        first = zlib.crc32(self.name.encode()) % blocks
        for attempt in range(blocks):
            base = ETCD_PORTS.start + (first + attempt) % blocks * width
            if all(labnet.port_free("127.0.0.1", port) for port in range(base, base + width)):
                break
        else:
            raise errors.Unavailable(f"no {width} free ports for etcd in {ETCD_PORTS}")
        for n, member in enumerate(self.etcd):
            member.client_port, member.peer_port = base + 2 * n, base + 2 * n + 1
        for controller in self.controllers:
            controller.endpoint = labnet.free_address(controller.endpoint)
            controller.metrics_addr = labnet.free_address(controller.metrics_addr)
        self._save()

    def _load_images(self, images: Path) -> None:
        """Import the images on the first host, then load the same images (same ids) on the others."""
        first, refs = self.hosts[0].name, [f"{image}:latest" for image, _ in IMAGES]
        for (image, cmd), ref in zip(IMAGES, refs):
            self._kran("import", "--node", first, "-c", f"CMD {cmd}", str(images / f"{image}.tar"), ref)
        if len(self.hosts) == 1:
            return
        bundle = self.dir / "images.tar"
        self._kran("save", "--node", first, "-o", str(bundle), *refs)
        loads = [subprocess.Popen([str(BIN / "kran"), "load", "--node", host.name, "-q", "-i", str(bundle)],
                                  env=self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for host in self.hosts[1:]]
        for host, load in zip(self.hosts[1:], loads):
            _, err = load.communicate(timeout=120)
            if load.returncode:
                raise errors.Internal(f"loading the images on {host.name} failed: {err.decode().strip()}")
        bundle.unlink()

    def _kran(self, *args: str) -> None:
        """Run the installed `kran` against the lab; errors.Internal with its message if it fails."""
        done = subprocess.run([str(BIN / "kran"), *args], env=self.env(), capture_output=True,
                              text=True, timeout=120)
        if done.returncode:
            raise errors.Internal(f"`kran {' '.join(args)}` exited {done.returncode}: {done.stderr.strip()}")

    # -- lab.json --

    def _save(self) -> None:
        if self.dir.is_dir():
            labstate.write(self.state_file, labstate.LabState(
                str(self.network), self.node_ttl, self.hosts, self.etcd, self.controllers))

    def _load(self) -> None:
        """Take what lab.json says (written by whichever process ran up()), if it exists."""
        state = labstate.read(self.state_file)
        if state is None:
            return
        self.network = ipaddress.ip_network(state.subnet)
        self.node_ttl = state.node_ttl
        self.gateway = str(self.network[1])
        self.hosts, self.etcd, self.controllers = state.hosts, state.etcd, state.controllers


def describe(lab: Lab) -> str:
    """What `status` prints: each process with its pid and whether it runs, each host's link."""
    def state(pid: int) -> str:
        return f"pid {pid}" if lab._ours(pid) else "not running"
    lines = [f"lab {lab.name} in {lab.dir}, subnet {lab.network}, gateway {lab.gateway}"]
    lines += [f"  etcd {m.name:<14} {m.endpoint:<21} {state(m.pid)}" for m in lab.etcd]
    lines += [f"  controller {n:<9} {c.endpoint:<21} {state(c.pid)}" for n, c in enumerate(lab.controllers)]
    lines += [f"  host {h.name:<15} {h.endpoint:<21} {state(h.agent_pid)}, link "
              f"{'up' if labnet.link_up(h.netns) else 'down'}" for h in lab.hosts]
    try:
        nodes = ", ".join(f"{n} {s}" for n, s in sorted(lab.node_states().items())) or "none"
    except errors.Unavailable as exc:
        nodes = exc.message
    lines.append(f"  nodes: {nodes}")
    lines.append(f"  export {HOST_ENV}={','.join(lab.controller_endpoints)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """python -m deploy.lab up|down|status; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m deploy.lab", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--name", default="kranlab", help="the lab's name (default %(default)s)")
    parser.add_argument("--hosts", type=int, default=3, help="hosts to run (default %(default)s)")
    parser.add_argument("--controllers", type=int, default=3, help="controllers to run (default %(default)s)")
    parser.add_argument("--root", type=Path, default=Path("/var/lib/kran-lab"),
                        help="where labs keep their state (default %(default)s)")
    parser.add_argument("--subnet", default="10.213.0.0/24", help="the lab's network (default %(default)s)")
    parser.add_argument("--node-ttl", type=int, default=4, help="controllers' --node-ttl (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        lab = Lab(args.name, hosts=args.hosts, controllers=args.controllers, root=args.root,
                  subnet=args.subnet, node_ttl=args.node_ttl)
        if args.action == "up":
            lab.up()
            print(describe(lab))
        elif args.action == "down":
            lab.down()
            print(f"lab {lab.name} is down")
        elif not lab.state_file.exists():
            print(f"lab {lab.name} is not up")
        else:
            print(describe(lab))
    except errors.KranError as exc:
        print(f"lab: {exc.message}", file=sys.stderr)
        if args.action == "up" and (args.root.absolute() / args.name / labstate.STATE_FILE).exists():
            print(f"(`python -m deploy.lab down --name {args.name}` removes what was started)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
