"""Freed large blocks go back to the operating system at once (glibc's malloc only).

glibc serves a large allocation with mmap, and unmaps it when it is freed; but
each time such a block is freed it raises that threshold to the block's size (up
to 32 MiB), so the next large allocations come from the heap, which keeps what
is freed. A process that handled one 25 MB message would then hold the memory of
its copies for good, and the next large message would add to it. Setting the
threshold fixes it (and stops the raising), so a process holds only the copies
alive at the moment.
"""

from __future__ import annotations

import ctypes
import os

M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h
# Blocks of this size and more are mapped on their own; smaller ones (all of Python's
# small objects, a parser's 64 KB pieces) still come from the heap, without a system call.
MMAP_THRESHOLD = 1024 * 1024


def return_large_blocks(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at `threshold` bytes; False when nothing was done.

    Nothing is done without glibc, nor when the environment sets the threshold
    (MALLOC_MMAP_THRESHOLD_): an administrator's setting stands.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return False
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already uses
    except (ValueError, OSError, AttributeError):  # no glibc: no such name, or no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))
