"""Kernel test harness: kernel -> vm -> guest -> results."""
