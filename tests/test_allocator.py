"""Large freed blocks go back to the operating system once the mmap threshold is fixed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

GLIBC = hasattr(os, "confstr") and "CS_GNU_LIBC_VERSION" in os.confstr_names and (
    os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")

# A block of 8 MB is allocated and freed first: glibc then raises its threshold above
# it, and without a fixed threshold the next one comes from the heap and stays there.
SCRIPT = """
import sys
from pathlib import Path
from maild.allocator import return_large_blocks

def rss_mb():
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 1048576

if sys.argv[1] == "fixed":
    assert return_large_blocks()
block = b"x" * (8 * 1024 * 1024)
del block
block = b"y" * (8 * 1024 * 1024)
held = rss_mb()
del block
print(held - rss_mb())
"""


def _returned_mb(mode: str) -> float:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], check=True,
                          capture_output=True, text=True)
    return float(done.stdout)


@pytest.mark.skipif(not GLIBC or not sys.platform.startswith("linux"),
                    reason="glibc's malloc on Linux only")
def test_a_freed_large_block_returns_its_memory_at_once() -> None:
    assert _returned_mb("fixed") > 7


@pytest.mark.skipif(not GLIBC or not sys.platform.startswith("linux"),
                    reason="glibc's malloc on Linux only")
def test_without_the_fixed_threshold_glibc_keeps_it() -> None:
    """What the setting is for: glibc's own behaviour, which the test above depends on."""
    assert _returned_mb("default") < 1



def test_a_threshold_the_environment_sets_stands() -> None:
    """An administrator's MALLOC_MMAP_THRESHOLD_ is theirs: it is not replaced."""
    script = ("from maild.allocator import return_large_blocks\n"
              "print(return_large_blocks())")
    done = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                          text=True, env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"})
    assert done.stdout.strip() == "False"
