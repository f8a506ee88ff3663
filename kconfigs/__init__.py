"""Kernel config fragments (*.config) for lean builds; shipped with the harness package."""
