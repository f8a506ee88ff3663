"""The fio options a plan may set, as one allow-list read by both sides: the harness's plan
loader (harness.suite.plans) and the agent's fio command lines (guest/fio.py), which treat
plan.json as untrusted too (in host mode the agent runs as root on the host).

Everything else is refused: `filename`/`directory` (the harness names the target), the
`exec_*` and `trigger*` commands, `ioengine=exec` or an external engine, and every option
that names a file (logs, iologs, verify state) or changes the system (ioscheduler, cgroups,
uid). No imports: the agent imports nothing it does not need at start.
"""

ALLOWED = frozenset(
    {
        # what the job does
        "rw",
        "readwrite",
        "rwmixread",
        "rwmixwrite",
        "bs",
        "blocksize",
        "bsrange",
        "bssplit",
        "ba",
        "blockalign",
        "size",
        "io_size",
        "offset",
        "offset_increment",
        "number_ios",
        "numjobs",
        "iodepth",
        "iodepth_batch",
        "iodepth_batch_submit",
        "iodepth_batch_complete",
        "iodepth_batch_complete_min",
        "iodepth_batch_complete_max",
        "iodepth_low",
        "ioengine",
        "direct",
        "buffered",
        "sync",
        "fsync",
        "fdatasync",
        "end_fsync",
        "fsync_on_close",
        "invalidate",
        "overwrite",
        "fallocate",
        "loops",
        "rw_sequencer",
        "zero_buffers",
        "refill_buffers",
        "scramble_buffers",
        "buffer_compress_percentage",
        "dedupe_percentage",
        "unified_rw_reporting",
        # time
        "runtime",
        "time_based",
        "ramp_time",
        "startdelay",
        "thinktime",
        "thinktime_blocks",
        "thinktime_spin",
        "rate",
        "rate_iops",
        "rate_min",
        "rate_iops_min",
        "rate_process",
        # randomness
        "randrepeat",
        "randseed",
        "norandommap",
        "random_generator",
        "random_distribution",
        "percentage_random",
        # engines' own options (io_uring, libaio)
        "hipri",
        "fixedbufs",
        "registerfiles",
        "sqthread_poll",
        "nonvectored",
        "uncached",
        "userspace_reap",
        "cmd_type",
        # verification (crc written and read back in the target itself)
        "verify",
        "do_verify",
        "verify_only",
        "verify_fatal",
        "verify_backlog",
        "verify_interval",
        "verify_pattern",
        "verify_state_save",
        "verify_async",
        # reporting
        "group_reporting",
        "lat_percentiles",
        "clat_percentiles",
        "slat_percentiles",
        "percentile_list",
        "disable_lat",
        "disable_clat",
        "disable_slat",
        "gtod_reduce",
    }
)
IOENGINES = frozenset(
    {
        "psync",
        "sync",
        "pvsync",
        "pvsync2",
        "vsync",
        "libaio",
        "io_uring",
        "posixaio",
        "mmap",
        "null",
    }
)


def problems(params: object) -> list[str]:
    """What is wrong with a plan's fio options (empty when they may run)."""
    if not isinstance(params, dict):
        return ["fio options must be an object of option: value"]
    found = []
    for key, value in params.items():
        if value is False or value is None:
            continue  # never passed to fio (fio_argv drops it)
        if key not in ALLOWED:
            found.append(
                f"fio option {key!r} is not allowed: the harness names the target "
                "and a plan runs no commands (allowed: ALLOWED in guest/fio_options.py)"
            )
        elif not isinstance(value, (bool, int, float, str)):
            found.append(f"fio option {key!r}: value must be a number, string or true")
        elif isinstance(value, str) and (not value.isprintable() or value.startswith("-")):
            found.append(f"fio option {key!r}: value {value!r} must be printable, no leading -")
        elif key == "ioengine" and value not in IOENGINES:
            found.append(
                f"fio ioengine {value!r} is not allowed: use one of " + ", ".join(sorted(IOENGINES))
            )
    return found


def check(params: object) -> None:
    """Raise ValueError naming every refused option (see problems())."""
    found = problems(params)
    if found:
        raise ValueError("; ".join(found))
