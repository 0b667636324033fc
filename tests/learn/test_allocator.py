"""freed_memory_kept: inside the block a training step reuses the pages the last step freed instead
of faulting in fresh ones; after it glibc behaves as by default again.

Each case runs in a fresh interpreter: the setting is process-wide."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# Adam steps on 64 MB of weights: every step allocates and frees tensors of that size (over
# glibc's largest mmap threshold, 32 MB), as a full-graph step does with its propagated layers.
PROBE = textwrap.dedent("""
    import resource, sys
    import torch
    from graphrec.learn.allocator import freed_memory_kept

    torch.manual_seed(0)
    w = torch.randn(2**18, 64, requires_grad=True)
    opt = torch.optim.Adam([w])

    def faults_of_a_step():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        loss = ((w * 2).relu() @ torch.ones(64)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    def ten_steps():
        faults_of_a_step()  # the first step faults its pages in either way
        return sum(faults_of_a_step() for _ in range(10))

    print(ten_steps())
    with freed_memory_kept() as kept:
        assert kept
        print(ten_steps())
    print(ten_steps())
""")

PAGES_OF_THE_WEIGHTS = 2**18 * 64 * 4 // 4096


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_steps_reuse_freed_pages_inside_the_block_only():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    before, inside, after = map(int, out.stdout.split())
    # The control: by default each of the 10 steps faults its large tensors in afresh (if glibc
    # ever stopped doing that, this says so instead of passing for the wrong reason).
    assert before > 10 * PAGES_OF_THE_WEIGHTS
    assert inside < before / 4
    assert after > 10 * PAGES_OF_THE_WEIGHTS  # the defaults are back
