"""The exit codes, defined once: 0 everything passed, 1 the kernel or a test failed,
2 infrastructure or usage error (the run could not tell)."""

EXIT_PASS, EXIT_FAIL, EXIT_INFRA = 0, 1, 2

# git bisect run's protocol, which `harness run --bisect-exit` answers in: 0 good, 1 bad,
# 125 skip (the run could not tell), 128 and above make git abort (a usage error).
GIT_BISECT_GOOD, GIT_BISECT_BAD, GIT_BISECT_SKIP, GIT_BISECT_ABORT = 0, 1, 125, 128
