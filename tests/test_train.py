import json
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from attention_course.core import training
from attention_course.core.gpt import GPT, GPTConfig
from attention_course.parallel import train as T


def test_schedule_warms_up_then_decays_to_min():
    lr = training.warmup_cosine_lr  # the schedule lesson 05 teaches and exercise 05 grades
    assert lr(0, 10, 110, 1.0, 0.1) == pytest.approx(0.1)
    assert lr(9, 10, 110, 1.0, 0.1) == pytest.approx(1.0)
    assert lr(10, 10, 110, 1.0, 0.1) == pytest.approx(1.0)
    assert lr(60, 10, 110, 1.0, 0.1) == pytest.approx(0.55)
    assert lr(110, 10, 110, 1.0, 0.1) == lr(500, 10, 110, 1.0, 0.1) == pytest.approx(0.1)
    config = T.TrainConfig(lr=1.0, min_lr=0.1, warmup_steps=10, max_steps=110)
    assert T.schedule_lr(60, 0.0, config) == pytest.approx(0.55)
    assert T.schedule_lr(20, 0.5, config) == pytest.approx(0.55)  # half the time budget used: half way down
    assert T.schedule_lr(5, 0.9, config) == pytest.approx(0.6)  # warm-up is counted in steps, never skipped


def test_weight_decay_skips_biases_and_norms():
    model = GPT(GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=1, d_model=8))
    groups = training.make_optimizer(model, 1e-3, 0.1, torch.device("cpu")).param_groups
    assert all(p.dim() >= 2 for p in groups[0]["params"]) and groups[0]["weight_decay"] == 0.1
    assert all(p.dim() < 2 for p in groups[1]["params"]) and groups[1]["weight_decay"] == 0.0


def test_random_batch_targets_are_inputs_shifted():
    data = torch.arange(100)
    x, y = T.random_batch(data, 8, 4, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert x.shape == y.shape == (4, 8) and torch.equal(x[:, 1:], y[:, :-1]) and torch.equal(y, x + 1)
    with pytest.raises(ValueError, match="block_size"):
        T.random_batch(torch.arange(5), 8, 1, torch.Generator(), torch.device("cpu"))


def test_training_learns_a_repeating_pattern():
    torch.manual_seed(0)
    data = torch.arange(6).repeat(400)
    model = GPT(GPTConfig(vocab_size=6, block_size=12, n_layer=1, n_head=2, d_model=32))
    config = T.TrainConfig(max_steps=120, batch_size=16, lr=3e-3, warmup_steps=10, eval_interval=60, eval_batches=2)
    history = T.train(model, data, data, config, torch.device("cpu"), decode=str, progress=False)
    assert history.val_loss[-1] < 0.5 and history.train_loss[0] > 1.0
    assert history.tokens_per_s > 0 and not history.diverged


def test_time_budget_stops_training():
    model = GPT(GPTConfig(vocab_size=6, block_size=8, n_layer=1, n_head=1, d_model=8))
    config = T.TrainConfig(max_steps=10**6, batch_size=2, warmup_steps=1, eval_interval=10**9, eval_batches=1,
                           time_budget_s=1.0)
    history = T.train(model, torch.arange(6).repeat(50), torch.arange(6).repeat(50), config, torch.device("cpu"),
                      progress=False)
    assert history.steps[-1] < 10**6 and history.train_seconds < 5


def _ddp_worker(rank, world_size, port, result_file):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    x = torch.arange(32.0).view(8, 4) / 10
    shard = x.chunk(world_size)[rank]
    ddp(shard).pow(2).mean().backward()
    if rank == 0:
        with open(result_file, "w") as handle:
            json.dump(model.weight.grad.tolist(), handle)
    dist.destroy_process_group()


def test_ddp_gradient_equals_full_batch_gradient(tmp_path):
    """The argument of lesson 04: averaging shard gradients (DDP, gloo, 2 processes) = the full-batch gradient."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = tmp_path / "grad.json"
    mp.spawn(_ddp_worker, args=(2, port, str(result)), nprocs=2, join=True)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    model(torch.arange(32.0).view(8, 4) / 10).pow(2).mean().backward()
    torch.testing.assert_close(torch.tensor(json.loads(result.read_text())), model.weight.grad)


def test_torchrun_trains_with_two_gloo_processes():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "attention_course.parallel.train", "--profile", "smoke", "--max-steps", "10"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["world_size"] == 2 and summary["steps"] == 10 and summary["final_val_loss"] < 4.5


def test_command_line_overrides_reach_model_and_training(capsys):
    import argparse

    parser = argparse.ArgumentParser()
    chosen = T._parse_overrides(["n_layer=3", "lr=2e-3", "fused_loss=True", "seed=4"], parser)
    assert chosen == {"model": {"n_layer": 3, "fused_loss": True}, "train": {"lr": 2e-3, "seed": 4}}
    with pytest.raises(SystemExit):
        T._parse_overrides(["vocab_size=9"], parser)  # the data decide the vocabulary
    assert "expected FIELD=VALUE" in capsys.readouterr().err


def test_update_steps_like_the_hand_written_loop_and_clips_when_asked():
    from attention_course.core.training import make_optimizer, set_lr, update

    def run(clip):
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 3)
        set_lr(optimizer := make_optimizer(model, 0.1, 0.01, "cpu"), 0.05)
        assert [group["lr"] for group in optimizer.param_groups] == [0.05, 0.05]
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)  # plain SGD: a clipped gradient moves less
        loss = (model(torch.randn(8, 4)) * 100).pow(2).mean()  # a large gradient
        if clip == "by hand":
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(model.parameters()), 1.0)
            optimizer.step()
        else:
            update(optimizer, loss, clip=list(model.parameters()) if clip else None)
        return [p.detach().clone() for p in model.parameters()]

    by_hand, clipped, unclipped = run("by hand"), run(True), run(False)
    assert all(torch.equal(a, b) for a, b in zip(by_hand, clipped, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(clipped, unclipped, strict=True))
