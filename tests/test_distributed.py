"""Two-process data-parallel training on CPU (torchrun, gloo) against a one-process run of the same global batch."""

import os
import socket
import subprocess
import sys

import pytest
import torch

from conftest import REPO

WORKER = str(REPO / "tests" / "ddp_worker.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def run(cmd, out):
    res = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=REPO, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return [torch.load(out / f"rank{r}.pt") for r in range(len(list(out.glob("rank*.pt"))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(out, method, batch):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), WORKER, str(out), method, str(batch)]
    return run(cmd, out)


@pytest.mark.slow
def test_two_process_erm_matches_one_process_with_the_same_global_batch(tmp_path):
    ranks = torchrun(tmp_path / "ddp", "none", 4)
    (single,) = run([sys.executable, WORKER, str(tmp_path / "one"), "none", "8"], tmp_path / "one")
    assert [r["world_size"] for r in ranks] == [2, 2] and single["world_size"] == 1
    torch.testing.assert_close(ranks[0]["params"], ranks[1]["params"], rtol=0, atol=0)  # ranks stay in sync
    # same update as one process seeing both ranks' rows: gradients are averaged, not summed
    torch.testing.assert_close(ranks[0]["params"], single["params"], rtol=0, atol=2e-6)
    # the logged loss is the true mean over the global batch, not world_size times it
    assert ranks[0]["losses"] == pytest.approx(single["losses"], rel=1e-5)


@pytest.mark.slow
def test_two_process_manifold_mixup_trains_with_ranks_in_sync(tmp_path):
    ranks = torchrun(tmp_path / "ddp", "manifold", 4)
    torch.testing.assert_close(ranks[0]["params"], ranks[1]["params"], rtol=0, atol=0)
    losses = ranks[0]["losses"]
    assert len(losses) == 4 and all(0.0 < x < 2.0 for x in losses)
