"""retain_freed_memory: a training step reuses the last step's freed pages instead of faulting in
fresh ones.

Each case runs in a fresh interpreter: the setting is process-wide and must not leak into the
test process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# An Adam step on 64 MB of weights: every step allocates and frees tensors of that size (over
# glibc's largest mmap threshold, 32 MB), as a full-graph step does with its propagated layers.
PROBE = textwrap.dedent("""
    import resource, sys
    import torch
    from graphrec.learn.allocator import retain_freed_memory

    if sys.argv[1] == "retain":
        assert retain_freed_memory()
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

    faults_of_a_step()  # the first step faults its pages in either way
    print(sum(faults_of_a_step() for _ in range(10)))
""")

PAGES_OF_THE_WEIGHTS = 2**18 * 64 * 4 // 4096


def faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_steps_reuse_the_pages_the_last_step_freed():
    default, retained = faults("default"), faults("retain")
    # The control: by default each of the 10 steps faults its large tensors in afresh (if glibc
    # ever stopped doing that, this says so instead of passing for the wrong reason).
    assert default > 10 * PAGES_OF_THE_WEIGHTS
    assert retained < default / 4
