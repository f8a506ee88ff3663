"""The exit codes, defined once: 0 everything passed, 1 the kernel or a test failed,
2 infrastructure or usage error (the run could not tell)."""

EXIT_PASS, EXIT_FAIL, EXIT_INFRA = 0, 1, 2
