"""Booting kernels: topology (disks as data), virtme-ng launch, console supervision."""
