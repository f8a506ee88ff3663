"""Keeping a remote run under control: its process group, its deadline, its connection.

The remote harness runs in a session of its own (`setsid -w`), its group id written to a
file in the run's directory, so this side can stop the whole group (TERM, then TERM again,
which makes the remote harness kill everything below it, then KILL) when the local run is
interrupted or times out; closing an SSH channel alone stops nothing (no pty, no SIGHUP).
The connection sends SSH keepalives and TCP keepalives, so a host that vanished is noticed
instead of waited on forever.
"""

from __future__ import annotations

import socket
from typing import Any

from harness.vm.console import Timeouts

KEEPALIVE_S = 15  # an SSH keepalive this often; TCP keepalive probes after the same idle
TCP_PROBES = 4  # unanswered TCP probes (KEEPALIVE_S apart) before the kernel drops it
SETUP_MARGIN_S = 3600.0  # resolving (fetching a Debian kernel) and installing there
IDLE_S = 600.0  # a shipping or fetching stream silent this long is a dead connection
CONTROL_S = 60.0  # the same for a stop or a clean-up (the stop takes ~STOP_GRACE_S + 12 s)
STOP_GRACE_S = 20  # the remote harness writes its partial results in this time
PIDFILE = "harness.pgid"

# $1 pid file, $2 grace: wait briefly for the file (the command may just be starting),
# TERM the group, wait up to the grace, TERM again (the remote harness then kills what is
# below it and exits at once), then KILL whatever is left. /bin/kill: dash's builtin
# reads -PGID as an option.
_STOP = """\
i=0; while [ ! -s "$1" ] && [ $i -lt 20 ]; do sleep 0.5; i=$((i+1)); done
pg=$(cat "$1" 2>/dev/null) || exit 0
case $pg in ''|*[!0-9]*) exit 0;; esac
/bin/kill -s TERM -- "-$pg" 2>/dev/null || exit 0
i=0
while /bin/kill -0 -- "-$pg" 2>/dev/null && [ $i -lt $(($2 * 2)) ]; do sleep 0.5; i=$((i+1)); done
/bin/kill -s TERM -- "-$pg" 2>/dev/null; sleep 1; /bin/kill -s KILL -- "-$pg" 2>/dev/null
exit 0
"""


def session_argv(pidfile: str, argv: list[str]) -> list[str]:
    """argv run as the leader of a new session there (its pid = its group id, written to
    pidfile); `-w` so the SSH command still ends with argv's exit status."""
    return ["setsid", "-w", "sh", "-c", 'echo $$ > "$0" && exec "$@"', pidfile, *argv]


def stop_argv(pidfile: str, grace_s: int = STOP_GRACE_S) -> list[str]:
    """Stop the group whose id is in pidfile (see _STOP); exits 0 when nothing is left."""
    return ["sh", "-c", _STOP, "sh", pidfile, str(grace_s)]


def run_timeout_s(timeouts: Timeouts) -> float:
    """How long the remote `harness run` may take: two attempts of the whole run (a retried
    one) plus resolving and installing there."""
    return 2 * timeouts.total_s + SETUP_MARGIN_S


def keep_alive(transport: Any) -> None:
    """SSH keepalives on the paramiko transport and TCP keepalives on its socket."""
    transport.set_keepalive(KEEPALIVE_S)
    sock = transport.sock
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, TCP_PROBES)
