"""A pool of remote hosts and the executor over it: each host gets a thread and one
connection and takes the next shard from a queue. A host that drops out mid-run leaves its
shard as a RunResult with infra_error and every step an error "host HOST dropped out"; it
takes no further shard. One run on one host is harness.run.remote.RemoteHost's."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import replace

from harness.kernel.model import Kernel
from harness.results.model import RunResult
from harness.run import remote_ship
from harness.run.remote import HostDropped, Job, RemoteHost, failed_result
from harness.run.remote_ship import RemoteOptions
from harness.run.request import RunRequest

log = logging.getLogger(__name__)

CANCEL_WAIT_S = 60.0  # after an interrupt: workers finish stopping and cleaning up


def _worker(host: RemoteHost, jobs: Sequence[Job], todo: queue.Queue, results: list) -> None:
    while True:
        try:
            index = todo.get_nowait()
        except queue.Empty:
            return
        try:
            results[index] = host.run_job(jobs[index])
        except HostDropped as exc:
            if host.cancelled.is_set():  # interrupted here: not the host's doing
                results[index] = failed_result(jobs[index], "interrupted")
                return
            log.error("host %s dropped out (%s): its shard is reported as errors", host.host, exc)
            results[index] = failed_result(jobs[index], f"host {host.host} dropped out ({exc})")
            host.close()
            return
        except Exception as exc:  # noqa: BLE001 - a thread must report, never vanish
            log.exception("running on %s failed", host.host)
            results[index] = failed_result(jobs[index], f"on {host.host}: {exc}")


def run_pool(jobs: Sequence[Job], hosts: Sequence[RemoteHost]) -> list[RunResult]:
    """Run every job on the first free host; results in job order, none missing."""
    todo: queue.Queue[int] = queue.Queue()
    for i in range(len(jobs)):
        todo.put(i)
    results: list[RunResult | None] = [None] * len(jobs)
    threads = [
        threading.Thread(
            target=_worker, args=(h, jobs, todo, results), daemon=True, name=f"remote-{h.host}"
        )
        for h in hosts
    ]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except KeyboardInterrupt:  # stop the remote runs, let the workers clean up, go on up
        log.warning("interrupted: stopping the runs on %d host(s)", len(hosts))
        for h in hosts:
            h.cancel()
        for t in threads:
            t.join(CANCEL_WAIT_S)
        raise
    return [
        r or failed_result(jobs[i], "no host left to run it: every host dropped out")
        for i, r in enumerate(results)
    ]


def _same_environment(runs: list[RunResult]) -> list[RunResult]:
    """A lost shard reports the environment its siblings ran in (so the merge accepts it)."""
    good = next((r for r in runs if r.stop_reason != "host-dropped"), None)
    if good is None:
        return runs
    return [
        replace(r, environment=good.environment) if r.stop_reason == "host-dropped" else r
        for r in runs
    ]


class RemoteExecutor:
    """The Executor over a pool: a request is cut into one shard per host (or runs the
    shard it names), the shards run on the pool, and come back merged into one result."""

    def __init__(self, opts: RemoteOptions) -> None:
        self.opts = opts
        self.hosts: list[RemoteHost] = []

    def connect(self) -> None:
        """Connect and prepare every host up front: a wrong key fails before any run."""
        if not self.hosts:
            self.hosts = [RemoteHost(h, self.opts) for h in self.opts.hosts]

    def jobs(self, req: RunRequest, kernel: Kernel) -> list[Job]:
        from harness.run.shard import plan_for

        full = plan_for(req.plan, req.topology, kernel.is_host)
        topology = "host" if kernel.is_host else remote_ship.topology_name(req.topology)
        if req.shard is not None:
            cuts = [req.shard]
        else:
            count = max(1, min(len(self.hosts), len(full.groups())))
            cuts = [(i, count) for i in range(1, count + 1)] if count > 1 else [None]
        return [
            Job(
                replace(
                    req,
                    shard=cut,
                    out_dir=req.out_dir / f"shard-{cut[0]}of{cut[1]}" if cut else req.out_dir,
                ),
                kernel,
                tuple(s.id for s in (full.shard_of(*cut) if cut else full).steps),
                full.name,
                topology,
            )
            for cut in cuts
        ]

    def run(self, req: RunRequest, kernel: Kernel) -> RunResult:
        from harness.run.merge import ShardRun, merge_group

        self.connect()
        jobs = self.jobs(req, kernel)
        runs = _same_environment(run_pool(jobs, self.hosts))
        if len(jobs) == 1:
            return runs[0]
        full = plan_for_steps(jobs)
        shards = [
            ShardRun(j.req.shard[0], j.req.shard[1], r, full, str(j.req.out_dir))
            for j, r in zip(jobs, runs, strict=True)
        ]
        return merge_group(shards, check_environment=False)

    def close(self) -> None:
        for host in self.hosts:
            host.close()


def plan_for_steps(jobs: Sequence[Job]) -> tuple[str, ...]:
    """The full plan order of a request cut into these jobs (shards keep plan order)."""
    from harness.run.shard import plan_for

    first = jobs[0]
    return tuple(
        s.id for s in plan_for(first.req.plan, first.req.topology, first.kernel.is_host).steps
    )
