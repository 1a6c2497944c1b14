"""What every benchmark measures the same way (imported by the bench_*.py scripts beside it)."""

from __future__ import annotations

import os


def rss_mib() -> float:
    """This process's resident memory in MiB (Linux /proc; NaN elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            resident_pages = int(f.read().split()[1])
    except OSError:
        return float("nan")
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20
