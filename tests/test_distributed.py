"""Two-process data-parallel training on CPU (torchrun, gloo) against a one-process run of the same global batch."""

import socket
import subprocess
import sys

import pytest
import torch

from testing_utils import ENV, REPO

WORKER = str(REPO / "tests" / "ddp_worker.py")
ENV = {**ENV, "OMP_NUM_THREADS": "1"}


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


@pytest.mark.slow
def test_manifold_mixup_under_fsdp2_on_two_cpu_processes(tmp_path, tokenizer):
    """torch FSDP2 (fully_shard, gloo): each rank holds half the parameters, mixes at the level it drew,
    and the sharded run reaches the parameters of one unsharded process that averages both ranks'
    losses; the saved model is a plain BertForSequenceClassification."""
    from transformers import AutoModelForSequenceClassification, BertForSequenceClassification

    from testing_utils import make_tiny_config

    worker = str(REPO / "tests" / "fsdp_worker.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), worker, str(tmp_path / "fsdp")]
    (tmp_path / "fsdp").mkdir()
    (tmp_path / "one").mkdir()
    ranks = run(cmd, tmp_path / "fsdp")
    (single,) = run([sys.executable, worker, str(tmp_path / "one"), "--reference"], tmp_path / "one")
    assert len(ranks) == 2
    for rank in ranks:
        assert rank["local_numel"] < 0.6 * rank["full_numel"]  # sharded, not replicated
        assert rank["mixed"] == rank["planned"] and len(rank["planned"]) == 4  # each step mixed where drawn
    assert ranks[0]["planned"] != ranks[1]["planned"]  # every rank draws its own levels
    assert single["planned"] == [level for pair in zip(ranks[0]["planned"], ranks[1]["planned"]) for level in pair]
    for name, value in single["params"].items():
        torch.testing.assert_close(ranks[0]["params"][name], ranks[1]["params"][name], rtol=0, atol=0)
        torch.testing.assert_close(ranks[0]["params"][name], value, rtol=0, atol=1e-6)
    torch.manual_seed(0)
    untrained = BertForSequenceClassification(make_tiny_config(tokenizer)).state_dict()
    assert not torch.equal(untrained["classifier.weight"], single["params"]["classifier.weight"])

    saved = AutoModelForSequenceClassification.from_pretrained(tmp_path / "fsdp" / "model")
    assert type(saved) is BertForSequenceClassification
    for name, value in saved.state_dict().items():
        torch.testing.assert_close(value, ranks[0]["params"][name], rtol=0, atol=0)
