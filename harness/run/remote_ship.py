"""What a remote run needs on the other side: the SSH connection with its host key
checked, the harness as a wheel installed into a cached venv, and the per-run payload
(request, plan and topology files, kernel artifacts). See harness.run.remote."""

from __future__ import annotations

import hashlib
import logging
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import paramiko
from paramiko.ssh_exception import SSHException

from harness.errors import InfraError, UserError
from harness.kernel.model import Kernel
from harness.paths import PROJECT_ROOT, cache_subdir, in_checkout
from harness.run.remote_control import keep_alive
from harness.run.request import RunRequest

if TYPE_CHECKING:
    from fabric import Connection

log = logging.getLogger(__name__)


class Shell(Protocol):
    """What install() needs of a connected host (harness.run.remote.RemoteHost is one)."""

    host: Any

    def run_cmd(self, argv: list[str]) -> Any: ...

    def put_tree(self, files: dict[str, Path], remote_dir: str) -> None: ...


__all__ = ["SSHException", "Host", "RemoteOptions", "connect", "install", "payload"]
_HOST = re.compile(r"^(?:(?P<user>[^@\s]+)@)?(?P<host>\[[^\]]+\]|[^:@\s\[\]]+)(?::(?P<port>\d+))?$")
_SPEC_SHIPPED_AS_IS = ("debian:", "host")  # resolved on the remote itself


@dataclass(frozen=True)
class Host:
    """[USER@]HOST[:PORT] (an IPv6 address in brackets)."""

    host: str
    user: str | None = None
    port: int = 22

    @classmethod
    def parse(cls, text: str) -> Host:
        m = _HOST.match(text.strip())
        if not m or (m["port"] and not 0 < int(m["port"]) < 65536):
            raise UserError(f"--host {text!r}: use [USER@]HOST[:PORT], e.g. root@lab1:2222")
        return cls(m["host"].strip("[]"), m["user"], int(m["port"] or 22))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        return f"{user}{host}" + (f":{self.port}" if self.port != 22 else "")

    @property
    def known_hosts_name(self) -> str:
        """How OpenSSH names this host in known_hosts."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


@dataclass(frozen=True)
class RemoteOptions:
    """How to reach the pool's hosts and where the harness keeps its cache there."""

    hosts: tuple[Host, ...]
    ssh_key: Path | None = None  # None: the SSH agent (and ~/.ssh/id_*)
    known_hosts: Path | None = None  # None: ~/.ssh/known_hosts
    insecure_host_key: bool = False
    remote_cache: str | None = None  # HARNESS_CACHE_DIR on the remote (its Debian kernels...)
    connect_timeout_s: int = 15

    def known_hosts_path(self) -> Path:
        return self.known_hosts or Path.home() / ".ssh" / "known_hosts"

    def host_key_note(self) -> str:
        if self.insecure_host_key:
            return "NOT CHECKED (--insecure-host-key)"
        return f"checked against {self.known_hosts_path()}"


def _client_policy(conn: Connection, opts: RemoteOptions) -> None:
    client = conn.client
    if opts.insecure_host_key:
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        return
    path = opts.known_hosts_path()
    if not path.is_file():
        raise UserError(
            f"known_hosts file {path} not found: pass --known-hosts PATH "
            "(or --insecure-host-key to skip the check, recorded in the results)"
        )
    try:
        client.load_system_host_keys(str(path))
    except OSError as exc:
        raise UserError(f"cannot read known_hosts {path}: {exc.strerror}") from exc
    client.set_missing_host_key_policy(paramiko.RejectPolicy())


def connect(host: Host, opts: RemoteOptions) -> Connection:
    """An open fabric Connection; wrong or unknown host key, bad auth -> one-line UserError."""
    from fabric import Connection

    kwargs: dict[str, Any] = {"allow_agent": True}
    if opts.ssh_key is not None:
        if not opts.ssh_key.is_file():
            raise UserError(f"--ssh-key {opts.ssh_key}: no such file")
        kwargs.update(key_filename=[str(opts.ssh_key)], look_for_keys=False)
    conn = Connection(
        host.host,
        user=host.user or "root",
        port=host.port,
        connect_timeout=opts.connect_timeout_s,
        connect_kwargs=kwargs,
    )
    _client_policy(conn, opts)
    known = opts.known_hosts_path()
    try:
        conn.open()
    except paramiko.BadHostKeyException as exc:
        raise UserError(
            f"host key of {host} does not match {known} (got {exc.key.get_name()}): "
            "fix known_hosts if the host was rebuilt, else do not connect"
        ) from exc
    except paramiko.AuthenticationException as exc:
        raise UserError(
            f"ssh {host}: authentication failed: pass --ssh-key PATH or add the key to ssh-agent"
        ) from exc
    except SSHException as exc:
        if "known_hosts" in str(exc):
            raise UserError(
                f"host {host} ({host.known_hosts_name}) is not in {known}: add its "
                "key (ssh-keyscan) or pass --insecure-host-key"
            ) from exc
        raise InfraError(f"ssh {host}: {exc}") from exc
    except (TimeoutError, OSError) as exc:
        raise InfraError(f"cannot reach {host}: {exc}: check the host and port") from exc
    keep_alive(conn.client.get_transport())
    return conn


def _source_hash() -> str:
    """A hash of what goes into the wheel (so an edit means a new wheel, nothing else)."""
    digest = hashlib.sha256()
    for top in ("harness", "guest", "kconfigs"):
        for path in sorted((PROJECT_ROOT / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(PROJECT_ROOT)).encode() + b"\0")
                digest.update(path.read_bytes())
    digest.update((PROJECT_ROOT / "pyproject.toml").read_bytes())
    return digest.hexdigest()[:20]


def wheel() -> tuple[Path, str]:
    """The harness wheel built from this checkout (`pip wheel --no-deps`), cached by source
    hash; returns (path, source hash)."""
    if not in_checkout():
        raise UserError("remote runs ship the harness built from a checkout: run from one")
    key = _source_hash()
    out = cache_subdir("remote-wheels") / key
    found = sorted(out.glob("kernel_harness-*.whl"))
    if found:
        return found[0], key
    argv = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "-q",
        "-w",
        str(out),
        str(PROJECT_ROOT),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    found = sorted(out.glob("kernel_harness-*.whl"))
    if done.returncode != 0 or not found:
        raise InfraError(f"building the harness wheel failed: {done.stderr.strip()[-300:]}")
    return found[0], key


def _deps_hash(path: Path) -> str:
    with zipfile.ZipFile(path) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        requires = [
            line
            for line in z.read(meta).decode().splitlines()
            if line.startswith("Requires-Dist:") and "extra ==" not in line
        ]
    return hashlib.sha256("\n".join(requires).encode()).hexdigest()[:12]


def install(host: Shell, root: str) -> str:
    """The harness installed on the host; returns the path of its `harness` script."""
    path, key = wheel()
    venv = f"{root}/venv-{_deps_hash(path)}"
    marker = f"{venv}/.harness-source"
    have = host.run_cmd(["cat", marker])
    if have.exited == 0 and have.stdout.strip() == key:
        return f"{venv}/bin/harness"
    log.info("installing the harness on %s (%s)", host.host, venv)
    host.put_tree({path.name: path}, f"{root}/wheels")
    remote_wheel = f"{root}/wheels/{path.name}"
    steps = [
        [
            "sh",
            "-c",
            'test -x "$1/bin/python" || python3 -m venv --system-site-packages "$1"',
            "sh",
            venv,
        ],
        [f"{venv}/bin/pip", "install", "-q", "--disable-pip-version-check", remote_wheel],
        [
            f"{venv}/bin/pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-deps",
            "--force-reinstall",
            remote_wheel,
        ],
        ["sh", "-c", 'printf %s "$1" > "$2"', "sh", key, marker],
    ]
    for argv in steps:
        done = host.run_cmd(argv)
        if done.exited != 0:
            tail = (done.stderr.strip().splitlines() or ["?"])[-1]
            raise InfraError(f"installing the harness on {host.host} failed: {tail}")
    return f"{venv}/bin/harness"


def topology_name(topology: str) -> str:
    from harness.vm import topology as topo_mod

    return topo_mod.load(topology).name


def _kernel_files(kernel: Kernel, rdir: str) -> tuple[dict[str, Path], str]:
    """Artifacts of a kernel built or given here, and the image: spec they make there."""
    assert kernel.image is not None
    files: dict[str, Path] = {f"kernel/{kernel.image.name}": kernel.image}
    spec = f"image:{rdir}/kernel/{kernel.image.name}"
    if kernel.modules_dir is not None and kernel.modules_dir.is_dir():
        files[f"kernel/modules/{kernel.modules_dir.name}"] = kernel.modules_dir
        spec += f",modules={rdir}/kernel/modules/{kernel.modules_dir.name}"
    return files, spec


def payload(
    req: RunRequest, kernel: Kernel, rdir: str
) -> tuple[dict[str, Path | bytes], RunRequest]:
    """Files to ship into rdir and the request as the remote runs it (paths rewritten)."""
    files: dict[str, Path | bytes] = {}
    changes: dict[str, Any] = {"out_dir": Path(f"{rdir}/out")}
    for field in ("plan", "topology"):
        local = Path(getattr(req, field))
        if local.is_file():
            files[f"{field}-{local.name}"] = local
            changes[field] = f"{rdir}/{field}-{local.name}"
    if not req.kernel.startswith(_SPEC_SHIPPED_AS_IS) and not kernel.is_host:
        shipped, changes["kernel"] = _kernel_files(kernel, rdir)
        files.update(shipped)
    remote_req = replace(req, **changes)
    import json

    files["request.json"] = json.dumps(remote_req.to_dict(), indent=1).encode()
    return files, remote_req
