"""A run on another machine over SSH (fabric); the pool of hosts and the executor over it
are harness.run.remote_pool.

Per host, once: connect with the host key checked (known_hosts, or --insecure-host-key,
which every result then records), build the harness wheel from this checkout (cached by a
hash of its sources), ship it and install it into a venv on the host (created with
--system-site-packages, kept between runs and keyed by the wheel's dependencies; the
harness itself is reinstalled only when its source hash changes).

Per run: ship the request (RunRequest.to_dict as request.json) with the plan and topology
files it names and, for kernels built or given as images here, the kernel artifacts (a
debian: or host spec is resolved there); run `harness run --request request.json --out
DIR` there with its log streamed into ours; fetch the results dir home with tar over the
same connection; return the RunResult, with this side's kernel provenance.

A pool gives each host a thread and one connection; each takes the next shard from a
queue. A host that drops out mid-run leaves its shard as a RunResult with infra_error and
every step an error "host HOST dropped out"; it takes no further shard.
"""

from __future__ import annotations

import io
import logging
import shlex
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from invoke.exceptions import CommandTimedOut

from harness.errors import InfraError
from harness.kernel.model import Kernel
from harness.results.model import Environment, RunResult, StepResult
from harness.results.store import load_runs
from harness.run import remote_ship
from harness.run.assemble import BOOT_STEP, KERNEL_LOG_STEP
from harness.run.remote_control import (
    CONTROL_S,
    IDLE_S,
    PIDFILE,
    run_timeout_s,
    session_argv,
    stop_argv,
)
from harness.run.remote_fetch import CHUNK, FETCH_CAP, fetch_cap, receive, safe_extract
from harness.run.remote_ship import Host, RemoteOptions, connect
from harness.run.request import RunRequest

log = logging.getLogger(__name__)

__all__ = ["Host", "RemoteOptions", "RemoteHost", "connect"]


class HostDropped(Exception):
    """The connection to a host broke mid-run: its shard is lost, the host leaves the pool."""


@dataclass(frozen=True)
class Job:
    """One request to run somewhere, with its resolved kernel and the steps it plans."""

    req: RunRequest
    kernel: Kernel
    steps: tuple[str, ...]  # the shard's step ids (a dropped host reports each as error)
    plan_name: str
    topology_name: str


class _LineLog(io.TextIOBase):
    """A text stream for fabric's out/err: each complete line goes to our log, prefixed."""

    def __init__(self, prefix: str) -> None:
        self.prefix, self.buf, self.last = prefix, "", ""

    def write(self, text: str) -> int:
        self.buf += text
        *lines, self.buf = self.buf.split("\n")
        for line in filter(None, (x.rstrip() for x in lines)):
            self.last = line
            log.info("[%s] %s", self.prefix, line)
        return len(text)


class _Sender(io.RawIOBase):
    """A channel's stdin as a file (for tarfile's stream mode)."""

    def __init__(self, chan) -> None:
        self.chan = chan

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.chan.sendall(bytes(data))
        return len(data)


def _killed_by_timer(exited: int, started: float, timeout: float) -> bool:
    """invoke's timer stops a remote command by closing its channel, and the run can
    return (exit -1: no status) while the timer thread is still inside that close, before
    invoke counts it timed out: a status-less end past the deadline is the timeout."""
    return exited == -1 and time.monotonic() - started >= timeout


class RemoteHost:
    """One connected, prepared host: runs jobs one at a time."""

    def __init__(self, host: Host, opts: RemoteOptions) -> None:
        self.host, self.opts = host, opts
        self.cancelled = threading.Event()  # the local run was interrupted: start nothing
        self.pidfile: str | None = None  # set while a remote harness may be running
        self.conn = connect(host, opts)
        self.home = self._output(["printenv", "HOME"]).strip() or "/root"
        self.root = f"{self.home}/.cache/kernel-harness-remote"
        self.harness = remote_ship.install(self, self.root)

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - closing a broken connection may fail any way
            pass

    def run_cmd(
        self,
        argv: Sequence[str],
        *,
        stream: bool = False,
        env: dict | None = None,
        timeout: float | None = None,
    ):
        """Run argv there (quoted for the remote shell); a broken connection or `timeout`
        seconds passed -> HostDropped (the command itself is not stopped: see run_job)."""
        cmd = shlex.join(list(argv))
        if env:
            cmd = shlex.join(["env", *(f"{k}={v}" for k, v in env.items())]) + " " + cmd
        out = _LineLog(str(self.host)) if stream else None
        started = time.monotonic()
        try:
            result = self.conn.run(
                cmd,
                hide=True,
                warn=True,
                in_stream=False,
                out_stream=out,
                err_stream=out,
                timeout=timeout,
            )
        except CommandTimedOut as exc:
            raise HostDropped(f"no end after {timeout:.0f} s: stopped") from exc
        except (OSError, EOFError, remote_ship.SSHException) as exc:
            raise HostDropped(f"connection lost: {exc}") from exc
        if timeout is not None and _killed_by_timer(result.exited, started, timeout):
            raise HostDropped(f"no end after {timeout:.0f} s: stopped")
        return result

    def _output(self, argv: Sequence[str]) -> str:
        result = self.run_cmd(argv)
        if result.exited != 0:
            raise InfraError(f"{self.host}: {shlex.join(argv)} failed: {result.stderr.strip()}")
        return result.stdout

    def put_tree(self, files: dict[str, Path | bytes], remote_dir: str) -> None:
        """Ship files (name -> local path or content) into remote_dir with tar over ssh,
        streamed (a kernel's modules are never whole in memory)."""

        def feed(out: BinaryIO) -> None:
            with tarfile.open(fileobj=out, mode="w|") as tar:
                for name, src in files.items():
                    if isinstance(src, bytes):
                        info = tarfile.TarInfo(name)
                        info.size = len(src)
                        tar.addfile(info, io.BytesIO(src))
                    else:
                        tar.add(str(src), arcname=name)

        cmd = (
            shlex.join(["mkdir", "-p", remote_dir])
            + " && "
            + shlex.join(["tar", "-C", remote_dir, "-xf", "-"])
        )
        self._pipe(cmd, feed=feed)

    def get_tree(self, remote_dir: str, local_dir: Path, cap: int = FETCH_CAP) -> None:
        """Fetch remote_dir's contents into local_dir: the tar stream goes to a file on disk
        a chunk at a time (kept images are full size), then is extracted as untrusted."""
        local_dir.parent.mkdir(parents=True, exist_ok=True)
        archive = local_dir.with_name(f".{local_dir.name}.fetch.tar")
        try:
            with archive.open("wb") as sink:
                self._pipe(
                    shlex.join(["tar", "-C", remote_dir, "-cf", "-", "."]), sink=sink, cap=cap
                )
            with tarfile.open(archive, mode="r:") as tar:
                safe_extract(tar, local_dir, cap)
        finally:
            archive.unlink(missing_ok=True)

    def _pipe(
        self,
        cmd: str,
        feed: Callable[[BinaryIO], None] | None = None,
        sink: BinaryIO | None = None,
        cap: int = FETCH_CAP,
        idle_s: float = IDLE_S,
    ) -> None:
        """cmd there, its input written by `feed`, its output streamed into `sink` (else
        discarded); silent for `idle_s` -> HostDropped."""
        chan = None
        try:
            chan = self.conn.client.get_transport().open_session(timeout=CONTROL_S)
            chan.settimeout(idle_s)
            chan.exec_command(cmd)
            if feed is not None:
                with io.BufferedWriter(_Sender(chan), CHUNK) as stdin:
                    feed(stdin)
                chan.shutdown_write()
            receive(chan, sink or io.BytesIO(), cap)
            err = chan.makefile_stderr("rb").read().decode(errors="replace")
            status = chan.recv_exit_status()
        except (OSError, EOFError, AttributeError, remote_ship.SSHException) as exc:
            raise HostDropped(f"connection lost: {exc}") from exc
        finally:
            if chan is not None:
                chan.close()
        if status != 0:
            raise HostDropped(f"{cmd.split()[0]} failed there (exit {status}): {err.strip()}")

    def run_job(self, job: Job) -> RunResult:
        """Ship, run, fetch; the RunResult as this side knows the kernel. On every way out
        the remote harness is stopped if it still runs and its directory is removed."""
        rdir = f"{self.root}/runs/{uuid.uuid4().hex[:12]}"
        try:
            return self._run_there(job, rdir)
        finally:
            self._clean_up(rdir)

    def _run_there(self, job: Job, rdir: str) -> RunResult:
        files, remote_req = remote_ship.payload(job.req, job.kernel, rdir)
        self.put_tree(files, rdir)
        env = {"HARNESS_CACHE_DIR": self.opts.remote_cache} if self.opts.remote_cache else None
        argv = [self.harness, "run", "--request", f"{rdir}/request.json", "--out", f"{rdir}/out"]
        log.info("%s: running %s on %s", job.req.kernel, _shard_text(job.req), self.host)
        if self.cancelled.is_set():
            raise HostDropped("interrupted before it started")
        self.pidfile = f"{rdir}/{PIDFILE}"
        result = self.run_cmd(
            session_argv(self.pidfile, argv),
            stream=True,
            env=env,
            timeout=run_timeout_s(job.req.timeouts),
        )
        self.pidfile = None
        if self.cancelled.is_set():
            raise HostDropped("interrupted")
        if result.exited not in (0, 1, 2):
            raise HostDropped(f"remote harness ended without an exit status ({result.exited})")
        local = job.req.out_dir / "remote"
        topology = None if job.kernel.is_host else job.req.topology
        self.get_tree(f"{rdir}/out", local, fetch_cap(job.req.keep_images, topology))
        if not (local / "results.json").is_file():
            line = result.stderr.strip().splitlines()[-1:] or [f"exit {result.exited}"]
            return failed_result(job, f"remote harness on {self.host} failed: {line[0]}")
        run = load_runs(local / "results.json")[0]
        return self._localised(job, run, local, remote_req)

    def stop(self) -> None:
        """Stop the remote harness if one runs (its whole process group); idempotent."""
        pidfile = self.pidfile
        if pidfile is None:
            return
        log.warning("%s: stopping the remote run", self.host)
        self._pipe(shlex.join(stop_argv(pidfile)), idle_s=CONTROL_S)

    def cancel(self) -> None:
        """The local run was interrupted: start no further job, stop the running one."""
        self.cancelled.set()
        try:
            self.stop()
        except HostDropped as exc:
            log.warning("%s: could not stop the remote run: %s", self.host, exc)

    def _clean_up(self, rdir: str) -> None:
        try:
            self.stop()
            self.pidfile = None
            self._pipe(shlex.join(["rm", "-rf", rdir]), idle_s=CONTROL_S)
        except HostDropped as exc:
            log.warning("%s: could not remove %s there: %s", self.host, rdir, exc)

    def _localised(self, job: Job, run: RunResult, local: Path, sent: RunRequest) -> RunResult:
        """This side's kernel info and paths; the host and its key check on the setup case."""
        console = local / Path(run.console_log).parent.name / Path(run.console_log).name
        note = {"remote_host": str(self.host), "host_key": self.opts.host_key_note()}
        if sent.kernel != job.req.kernel:
            note["remote_kernel"] = sent.kernel
        steps = tuple(
            replace(s, details={**s.details, **note}) if s.id in (BOOT_STEP, KERNEL_LOG_STEP) else s
            for s in run.steps
        )
        return replace(
            run,
            kernel=job.kernel.info(),
            console_log=str(console),
            steps=steps,
            repetition=job.req.repetition,
        )


def _shard_text(req: RunRequest) -> str:
    return f"shard {req.shard[0]}/{req.shard[1]}" if req.shard else "the plan"


def failed_result(job: Job, why: str, environment: Environment | None = None) -> RunResult:
    """A shard that produced nothing: an infra error, and every step of it an error."""
    setup = KERNEL_LOG_STEP if job.kernel.is_host else BOOT_STEP
    steps = [StepResult(setup, "setup", "error", why)]
    steps += [StepResult(sid, "", "error", why) for sid in job.steps]
    return RunResult(
        kernel=job.kernel.info(),
        environment=environment or Environment(accel=job.req.accel),
        topology=job.topology_name,
        plan=job.plan_name,
        steps=tuple(steps),
        infra_error=why,
        repetition=job.req.repetition,
        stop_reason="host-dropped",
    )
