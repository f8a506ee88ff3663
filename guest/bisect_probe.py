"""Runs a bisect --test script:PATH inside the guest (stdlib only, like guest/agent.py).

It speaks the agent's contract (docs/CONTRACT.md): start/begin/end/done markers on the
console and one step record in RESULTS/steps.jsonl, so the host supervises, times out and
assembles it like any other step. Exit codes follow `git bisect run`: 0 pass, 125 skip,
1-127 fail; killed by a signal or timed out: error.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

# Run as a script beside protocol.py (guest/ in a checkout, harness_guest/ in a wheel).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from protocol import emit  # noqa: E402


def marker(**event: object) -> None:
    emit(event)


def status_of(rc: int) -> str:
    if rc == 0:
        return "pass"
    if rc == 125:
        return "skip"
    return "fail" if 0 < rc < 128 else "error"


def run_script(script: str, timeout_s: float) -> tuple[int, str]:
    try:
        proc = subprocess.run(
            ["/bin/sh", script], capture_output=True, text=True, timeout=timeout_s, cwd="/tmp"
        )
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {timeout_s:.0f} s"
    out = (proc.stdout + proc.stderr).strip()
    return (proc.returncode if proc.returncode >= 0 else 128 - proc.returncode), out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--script", required=True)
    parser.add_argument("--results", required=True)
    parser.add_argument("--id", required=True)
    parser.add_argument("--timeout", type=float, default=300.0)
    ns = parser.parse_args(argv)
    marker(event="start", release=os.uname().release)
    marker(event="begin", id=ns.id, timeout_s=ns.timeout)
    t0 = time.monotonic()
    rc, output = run_script(ns.script, ns.timeout)
    status = status_of(rc)
    record = {
        "id": ns.id,
        "kind": "check",
        "status": status,
        "target": "guest",
        "workload": "",
        "message": f"script exited {rc}" + (f": {output.splitlines()[-1]}" if output else ""),
        "duration_s": round(time.monotonic() - t0, 2),
        "metrics": {},
        "details": {"rc": rc, "output": output[-4000:]},
    }
    with open(os.path.join(ns.results, "steps.jsonl"), "a") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    marker(event="end", id=ns.id, status=status)
    marker(event="done", rc=0 if status in ("pass", "skip") else 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
