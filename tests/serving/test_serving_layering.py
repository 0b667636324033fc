"""The API never trains: importing it loads neither torch nor the training code."""

from __future__ import annotations

import subprocess
import sys


def test_api_imports_no_training_code():
    probe = ("import sys, api.main, graphrec.cli.serving, graphrec.serving.publish; "
             "bad = [m for m in ('torch', 'torch_geometric', 'graphrec.train', 'graphrec.models', 'graphrec.graph') "
             "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
