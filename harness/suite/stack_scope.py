"""Named scopes for the path-scoped stack figure: the functions the ftrace stack tracer is
limited to (`stacktrace_filter=` on the kernel command line, set at boot because changing
the filter live patches function entries while other vCPUs run, which oopses TCG guests).

The tracer then measures the stack on entry to these functions only, so its maximum is the
deepest stack at which I/O was submitted or a filesystem's I/O path was entered, and its
frame list shows which path that was (guest/stackpath.py).
"""

from __future__ import annotations

import re

from harness.errors import UserError

# Block submission and dispatch (built into every kernel: the filter never ends up empty,
# which would trace every function), the disk drivers and dm below, loop's queue_rq, and the
# filesystems' I/O entry points. Functions in modules loaded after boot are not matched.
# Not blk_mq_flush_plug_list: every task that sleeps with a plug enters it from schedule()
# (an exec reading over 9p was 3552 bytes deep there under Debian 6.12), which hid loop's
# path; requests a flush really dispatches still meet the queue_rq functions below.
SUBMISSION = (
    "submit_bio_noacct",
    "blk_mq_submit_bio",
    "loop_queue_rq",
    "dm_submit_bio",
    "nvme_queue_rq",
    "virtio_queue_rq",
    "scsi_queue_rq",
    "iomap_dio_rw",
    "xfs_file_read_iter",
    "xfs_file_write_iter",
    "ext4_file_read_iter",
    "ext4_file_write_iter",
)

SCOPES: dict[str, tuple[str, ...]] = {"submission": SUBMISSION}
_FUNCTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def resolve(value: object, where: str) -> tuple[str, ...]:
    """A scope name or a list of kernel function names -> the functions; UserError else."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        if value not in SCOPES:
            raise UserError(
                f"{where}: stack_scope {value!r}: use one of {', '.join(SCOPES)} "
                "or a list of kernel function names"
            )
        return SCOPES[value]
    if not isinstance(value, list) or not all(
        isinstance(v, str) and _FUNCTION.match(v) for v in value
    ):
        raise UserError(
            f"{where}: stack_scope must be a scope name or a list of function "
            "names (letters, digits, _ and . only)"
        )
    return tuple(value)


def boot_word(functions: tuple[str, ...]) -> str:
    """The kernel command-line word that enables the stack tracer limited to `functions`."""
    return "stacktrace_filter=" + ",".join(functions)
