"""--host and its SSH options, shared by run, ab, bisect and backport (harness.run.remote)."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path


def host_options(p: argparse.ArgumentParser) -> None:
    """--host and its SSH options (harness.run.remote): run, ab, bisect and backport."""
    p.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="[USER@]HOST[:PORT]",
        help="run on this host over SSH, repeatable: a pool, one shard per host",
    )
    p.add_argument("--ssh-key", type=Path, metavar="PATH", help="default: the SSH agent")
    p.add_argument(
        "--known-hosts",
        type=Path,
        metavar="PATH",
        help="host keys to check (default ~/.ssh/known_hosts)",
    )
    p.add_argument(
        "--insecure-host-key",
        action="store_true",
        help="accept any host key (recorded in the results)",
    )
    p.add_argument("--remote-cache", metavar="DIR", help="HARNESS_CACHE_DIR on the hosts")


def remote_executor(ns: argparse.Namespace):  # -> RemoteExecutor | None
    """The pool executor when --host is given, not yet connected (remote_pool connects)."""
    if not getattr(ns, "host", None):
        return None
    from harness.run.remote import Host, RemoteOptions
    from harness.run.remote_pool import RemoteExecutor

    return RemoteExecutor(
        RemoteOptions(
            hosts=tuple(Host.parse(h) for h in ns.host),
            ssh_key=ns.ssh_key,
            known_hosts=ns.known_hosts,
            insecure_host_key=ns.insecure_host_key,
            remote_cache=ns.remote_cache,
        )
    )


@contextlib.contextmanager
def remote_pool(ns: argparse.Namespace) -> Iterator:  # Iterator[RemoteExecutor | None]
    """remote_executor(ns) for the length of a command, connected and prepared up front (a
    wrong host key or an unreachable host fails before anything is built or booted); its
    SSH connections closed after."""
    remote = remote_executor(ns)
    try:
        if remote is not None:
            remote.connect()
        yield remote
    finally:
        if remote is not None:
            remote.close()
