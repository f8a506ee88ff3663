"""Benchmark: remote runs over SSH (fabric) against sshd servers on 127.0.0.1.

    .venv/bin/python benchmarks/bench_remote.py [--plan loop] [--kernel debian:6.12]
        [--default-plan quick] [--skip-split]

Prints
1. the wall time of PLAN as one local run, and as 2 shards on two local "hosts" (two sshd
   on two ports of this machine, one shard each, merged): on one 2-core machine the two
   TCG guests share the cores, so this shows the overhead and balance of the cut rather
   than a real speed-up (on two machines the shards' times do not add);
2. the remote path's overhead for the default job (DEFAULT_PLAN on KERNEL): a local run vs
   the same run on one remote host, and the ship/install/fetch parts of it (connect +
   install with a warm venv, payload, fetch).

Each run boots; hold /tmp/harness-heavy.lock when others share the machine. Not a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_remote_sshd import keygen, start_sshd  # noqa: E402

from harness.paths import cache_dir  # noqa: E402

HARNESS = str(ROOT / ".venv/bin/harness")


def timed(argv: list[str]) -> tuple[float, int]:
    t0 = time.monotonic()
    rc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    return time.monotonic() - t0, rc


def remote_argv(root: Path, servers) -> list[str]:
    argv = []
    for server in servers:
        argv += ["--host", server.host]
    return argv + [
        "--ssh-key",
        str(root / "client"),
        "--known-hosts",
        str(root / "known_hosts"),
        "--remote-cache",
        str(cache_dir()),
    ]


def parts(root: Path, server) -> dict[str, float]:
    """Connect + install (warm venv), ship a request, fetch a small results dir."""
    from harness.run.remote import Host, RemoteHost, RemoteOptions

    host = Host.parse(server.host)
    t0 = time.monotonic()
    remote = RemoteHost(host, RemoteOptions((host,), root / "client", root / "known_hosts"))
    t1 = time.monotonic()
    blob = b"x" * (1 << 20)
    remote.put_tree({"blob": blob}, f"{remote.root}/bench")
    t2 = time.monotonic()
    remote.get_tree(f"{remote.root}/bench", root / "fetched")
    t3 = time.monotonic()
    remote.run_cmd(["rm", "-rf", f"{remote.root}/bench"])
    remote.close()
    return {"connect+install": t1 - t0, "ship 1 MiB": t2 - t1, "fetch 1 MiB": t3 - t2}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plan", default="loop")
    ap.add_argument("--kernel", default="debian:6.12")
    ap.add_argument("--default-plan", default="quick")
    ap.add_argument("--skip-split", action="store_true", help="only the remote overhead")
    ns = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-remote-"))
    pub = keygen(root / "client")
    servers = [start_sshd(root / f"sshd{i}", root / "client", pub) for i in range(2)]
    (root / "known_hosts").write_text("".join(s.known_hosts_line() for s in servers))
    base = [HARNESS, "run", "--kernel", ns.kernel, "--accel", "tcg"]
    rows = []
    try:
        print(json.dumps(parts(root, servers[0]), indent=1))
        if not ns.skip_split:
            one = timed([*base, "--plan", ns.plan, "--out", str(root / "one")])
            two = timed(
                [*base, "--plan", ns.plan, "--out", str(root / "two"), *remote_argv(root, servers)]
            )
            rows += [(f"{ns.plan}: one local run", one), (f"{ns.plan}: 2 shards, 2 hosts", two)]
        local = timed([*base, "--plan", ns.default_plan, "--out", str(root / "local")])
        remote = timed(
            [
                *base,
                "--plan",
                ns.default_plan,
                "--out",
                str(root / "remote"),
                *remote_argv(root, servers[:1]),
            ]
        )
        rows += [(f"{ns.default_plan}: local", local), (f"{ns.default_plan}: remote", remote)]
    finally:
        for server in servers:
            server.stop()
    for name, (seconds, rc) in rows:
        print(f"{name:32s} {seconds:7.1f} s  (exit {rc})")
    if len(rows) >= 2:
        (_, (lt, _)), (_, (rt, _)) = rows[-2], rows[-1]
        print(f"remote path overhead (default job): {rt - lt:+.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
