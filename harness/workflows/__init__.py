"""Workflows over the run engine: ab, bench (and bisect, backport, shard/merge)."""
