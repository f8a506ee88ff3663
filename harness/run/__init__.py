"""The run engine: a serialisable RunRequest, a resolved Kernel, and executors (VM, host)
that share one skeleton (harness.run.executor)."""
