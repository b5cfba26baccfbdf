"""lazyfs on the hosts of an ssh run: a zipapp, remote mounts, and their run-state records.

In: an :class:`~harness.ssh.SshLink` per node and the run state. Out:

- :func:`zipapp` — ``harness.lazyfs`` with what it imports (``harness.errors``,
  ``mfusepy``) as one deterministic ``.pyz`` (same sources, same bytes, same
  sha256), so a host needs only ``python3`` and fuse3; the cluster uploads it
  once per host like the server binary;
- :class:`RemoteLazyMount` — a :class:`~harness.lazyfs.LazyFSMount` whose
  process runs on the host (``setsid python3 lazyfs.pyz …``, controlled by
  pid after a ``/proc/<pid>/cmdline`` check), whose mount is checked in the
  host's ``/proc/mounts`` and whose control socket is spoken to through the
  host's command agent (:class:`RemoteControl`);
- :class:`RemoteLazyStores` — the run's :class:`~harness.backends.lazystore.LazyStores`
  with every mount and lazyfs pid recorded as the node's (``remote_mounts``,
  ``remote_pids``), so ``clean`` finds them on the host.
"""

from __future__ import annotations

import hashlib
import posixpath
import shlex
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.backends.lazystore import LazyStores
from harness.lazyfs import ControlClient, LazyFSControlError, LazyFSMount, LazyFSMountError
from harness.runstate import RunState
from harness.ssh import EXISTS, IS, KILL, SshLink, snippet

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 20.0
# Speaks one request to a lazyfs control socket on the host: argv[1] the socket, argv[2] the line.
CONTROL = (
    "import socket, sys\n"
    "s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])\n"
    "s.sendall(sys.argv[2].encode() + b'\\n'); b = b''\n"
    "while not b.endswith(b'\\n'):\n"
    "    c = s.recv(65536)\n"
    "    if not c: break\n"
    "    b += c\n"
    "sys.stdout.write(b.decode())\n"
)
MAIN = "import sys\nfrom harness.lazyfs.__main__ import main\nsys.exit(main())\n"


def zipapp(dest_dir: Path) -> Path:
    """Write ``lazyfs-<sha256 prefix>.pyz`` into ``dest_dir``; return its path."""
    import mfusepy

    sources = [ROOT / "harness" / "__init__.py", ROOT / "harness" / "errors.py"]
    sources += sorted((ROOT / "harness" / "lazyfs").glob("*.py"))
    members = [(str(p.relative_to(ROOT)), p.read_bytes()) for p in sources]
    members += [("mfusepy.py", Path(mfusepy.__file__).read_bytes()), ("__main__.py", MAIN.encode())]
    tmp = dest_dir / "lazyfs.pyz.part"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    path = dest_dir / f"lazyfs-{digest[:16]}.pyz"
    tmp.replace(path)
    return path


class RemoteControl(ControlClient):
    """A lazyfs control socket on another host, reached through its command agent."""

    def __init__(self, link: SshLink, path: str, timeout: float = 10.0) -> None:
        super().__init__(path, timeout)
        self.link = link

    def exchange(self, line: bytes) -> bytes:
        argv = ["python3", "-c", CONTROL, self.path, line.decode().strip()]
        proc = self.link.run(argv, check=False, timeout=self.timeout + 5)
        if proc.returncode != 0:
            why = proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
            raise LazyFSControlError(f"lazyfs control socket {self.path} on {self.link.where}: "
                                     f"{why[0]}")  # fmt: skip
        return proc.stdout.encode()


class RemoteLazyMount(LazyFSMount):
    """A lazyfs mount on another host (see the module doc); ``on_spawn(pid, cmdline)``."""

    def __init__(
        self,
        link: SshLink,
        pyz: str,
        node_dir: str,
        stores: LazyStores,
        python: str,
        on_spawn: Callable[[int, str], None],
        on_exit: Callable[[int], None],
    ) -> None:
        super().__init__(
            posixpath.join(node_dir, "data"),
            posixpath.join(node_dir, "backing"),
            posixpath.join(node_dir, "lazyfs.sock"),
            stores.writeback_after,
            log_path=posixpath.join(node_dir, "lazyfs.log"),
            kernel_cache=stores.kernel_cache,  # the mode per sync setting, as on this host
            extra_args=stores.extra_args,
            cache_bytes=stores.cache_bytes,
        )
        self.python = python
        self.link = link
        self.pyz = pyz
        self.client = RemoteControl(link, str(self.control))
        self.remote_pid: int | None = None
        self.cmdline = ""
        self._spawned = on_spawn
        self._exited = on_exit

    @property
    def pid(self) -> int | None:
        return self.remote_pid

    def command(self) -> list[str]:
        return [self.python, self.pyz, *super().command()[3:]]

    def _sh(self, line: str, check: bool = False, timeout: float = 30.0) -> Any:
        return self.link.shell(line, check=check, timeout=timeout)

    def _mounted(self) -> bool:
        mp = shlex.quote(str(self.mountpoint))
        return self._sh(f"awk '{{print $2}}' /proc/mounts | grep -qxF {mp}").returncode == 0

    def alive(self) -> bool:
        if self.remote_pid is None:
            return False
        return self._sh(snippet(IS, self.remote_pid, self.cmdline)).returncode == 0

    def _exists(self) -> bool:
        pid = self.remote_pid
        return pid is not None and self._sh(snippet(EXISTS, pid, "")).returncode == 0

    def start(self) -> LazyFSMount:
        if self._mounted():
            raise LazyFSMountError(f"{self.mountpoint} on {self.link.where} is already mounted")
        argv = self.command()
        dirs = [str(self.mountpoint), str(self.backing)]
        self.link.run(["mkdir", "-p", *dirs])
        self.link.run(["rm", "-f", str(self.control)])
        log = shlex.quote(str(self.log_path))
        line = f"{{ setsid {shlex.join(argv)} >> {log} 2>&1 < /dev/null & echo $!; }}"
        self.remote_pid = int(self._sh(line, check=True).stdout.strip())
        self.cmdline = " ".join(argv) + " "
        self._spawned(self.remote_pid, self.cmdline)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not self.alive() and not self._exists():  # (before its exec: not yet lazyfs)
                raise LazyFSMountError(f"lazyfs at {self.mountpoint} on {self.link.where} "
                                       f"exited; see its {self.log_path}")  # fmt: skip
            if self._mounted():
                try:
                    if self.client.ping() == self.remote_pid:
                        return self
                except LazyFSControlError:
                    pass
            time.sleep(0.1)
        self.stop()
        raise LazyFSMountError(f"lazyfs at {self.mountpoint} on {self.link.where} did not come "
                               f"up within {START_TIMEOUT:g}s")  # fmt: skip

    def stop(self, timeout: float = 10.0) -> None:
        mp = shlex.quote(str(self.mountpoint))
        pid = self.remote_pid
        if pid is not None and self.alive():
            self._sh(f"fusermount3 -u {mp}")
            deadline = time.monotonic() + timeout
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.alive():  # each signal only while the pid is still this lazyfs
                self._sh(snippet(f"({IS}) && kill -TERM $1; sleep 1; {KILL}", pid, self.cmdline))
        for umount in (f"fusermount3 -u {mp}", f"umount {mp}", f"umount -l {mp}"):
            if not self._mounted():
                break
            self._sh(umount)
        if self._mounted():
            raise LazyFSMountError(f"could not unmount lazyfs at {mp} on {self.link.where}")
        self._sh(f"rm -f {shlex.quote(str(self.control))}")
        if pid is not None and not self.alive():
            self._exited(pid)
            self.remote_pid = None

    def flush(self) -> dict[str, int]:
        mp = shlex.quote(str(self.mountpoint))
        self._sh(f"find {mp} -type f -exec sync {{}} +", check=True, timeout=120)
        return self.client.flush()


class RemoteLazyStores(LazyStores):
    """The lazyfs mounts of an ssh run: on each node's host, recorded as that node's."""

    def __init__(
        self,
        state: RunState,
        links: dict[str, SshLink],
        writeback_after: float | None,
        cache_bytes: int | None,
        sync_interval: str,
    ) -> None:
        super().__init__(state, writeback_after, cache_bytes, sync_interval)
        self.links = links
        self._node_of: dict[str, str] = {}  # mountpoint -> node

    def add_remote(self, node: str, node_dir: str, pyz: str) -> str:
        """Mount lazyfs for ``node`` in ``node_dir`` on its host; return the server's store."""
        link = self.links[node]
        mount = RemoteLazyMount(
            link, pyz, node_dir, self, link.python,
            on_spawn=lambda pid, cmdline: self.state.add_remote_pid(node, pid, cmdline),
            on_exit=lambda pid: self.state.drop_remote_pid(node, pid),
        )  # fmt: skip
        self.mounts[node] = mount
        self._node_of[str(mount.mountpoint)] = node
        self._start(mount)
        return str(mount.mountpoint)

    def _record_mount(self, mount: LazyFSMount) -> None:
        self.state.add_remote_mount(self._node_of[str(mount.mountpoint)], str(mount.mountpoint))

    def _forget_mount(self, mount: LazyFSMount) -> None:
        self.state.drop_remote_mount(self._node_of[str(mount.mountpoint)], str(mount.mountpoint))

    def _forget_pid(self, pid: int | None) -> None:
        """Remote lazyfs pids are dropped by their mount as it sees them exit."""
