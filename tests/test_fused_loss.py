import pytest
import torch
import torch.nn.functional as F
from triton_interpreter import run_under_interpreter

from attention_course.core import benchmarks
from attention_course.core.fused_loss import linear_cross_entropy, one_pass_available
from attention_course.core.gpt import GPT, GPTConfig
from attention_course.parallel import gpt_step


@pytest.mark.parametrize("chunk_rows", [1, 7, 64, 1000])
def test_loss_and_gradients_equal_the_unfused_ones(chunk_rows):
    torch.manual_seed(chunk_rows)
    hidden = torch.randn(3, 21, 16, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(45, 16, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(45, (3, 21))
    expected = F.cross_entropy((hidden @ weight.T).flatten(0, 1), targets.flatten())
    grad_hidden, grad_weight = torch.autograd.grad(3 * expected, (hidden, weight))
    got = linear_cross_entropy(hidden, weight, targets, chunk_rows=chunk_rows)
    torch.testing.assert_close(got, expected)
    got_hidden, got_weight = torch.autograd.grad(3 * got, (hidden, weight))
    torch.testing.assert_close(got_hidden, grad_hidden)
    torch.testing.assert_close(got_weight, grad_weight)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="expected hidden"):
        linear_cross_entropy(torch.randn(4, 8), torch.randn(10, 6), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="expected hidden"):
        linear_cross_entropy(torch.randn(4, 8), torch.randn(10, 8), torch.zeros(5, dtype=torch.long))


def test_gpt_with_the_fused_loss_trains_the_same():
    config = dict(vocab_size=31, block_size=16, n_layer=2, n_head=2, d_model=16)
    tokens, targets = torch.randint(31, (4, 16)), torch.randint(31, (4, 16))
    torch.manual_seed(0)
    plain = GPT(GPTConfig(**config))
    fused = GPT(GPTConfig(**config, fused_loss=True))
    fused.load_state_dict(plain.state_dict())
    _, expected = plain(tokens, targets)
    logits, got = fused(tokens, targets)
    assert logits is None
    torch.testing.assert_close(got, expected)
    expected.backward()
    got.backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), fused.named_parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, atol=1e-6, rtol=1e-4, msg=name)


def test_side_by_side_harness_times_every_model(nanogpt_stand_in, monkeypatch):
    result = gpt_step.bench_gpt_vs_nanogpt("smoke", model_file=str(nanogpt_stand_in), rounds=1)
    assert set(result["step_ms"]) == {"nanoGPT", "course", "course, fused loss"}
    assert all(ms > 0 for ms in result["step_ms"].values()) and result["speed_vs_nanogpt"]["nanoGPT"] == 1.0
    assert "x nanoGPT's speed" in benchmarks.format_result(result)
    monkeypatch.delenv(gpt_step.NANOGPT_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match="NANOGPT_MODEL_FILE"):
        gpt_step.bench_gpt_vs_nanogpt("smoke")
    # A misspelt variant is refused by name, before any model is built
    # (reading options from words in the name once built the plain model for it).
    with pytest.raises(ValueError, match="course, fused los.*expected names"):
        gpt_step.bench_gpt_vs_nanogpt("smoke", model_file=str(nanogpt_stand_in), variants=("course, fused los",))


def assert_one_pass_matches_cross_entropy(device: str, vocabs=(4096, 5000, 50304), rows=37, width=16):
    """The one-pass path's loss and gradients against F.cross_entropy's, for each vocabulary size (a whole number
    of column blocks, a partial last block, GPT-2's)."""
    for vocab in vocabs:
        generator = torch.Generator().manual_seed(rows + vocab)
        hidden = (2 * torch.randn(rows, width, generator=generator)).to(device).requires_grad_()
        weight = torch.randn(vocab, width, generator=generator).to(device).requires_grad_()
        targets = torch.randint(vocab, (rows,), generator=generator).to(device)
        expected = F.cross_entropy(hidden @ weight.T, targets)
        got = linear_cross_entropy(hidden, weight, targets, one_pass=True)
        torch.testing.assert_close(got, expected)
        for grad, reference in zip(torch.autograd.grad(2 * got, (hidden, weight)),
                                   torch.autograd.grad(2 * expected, (hidden, weight)), strict=True):
            torch.testing.assert_close(grad, reference, atol=1e-6, rtol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the one-pass kernel runs on CUDA (Triton)")
def test_one_pass_kernel_matches_cross_entropy_on_a_gpu():
    assert_one_pass_matches_cross_entropy("cuda")


def test_one_pass_kernel_in_triton_interpreter():
    """The same check on the CPU, through Triton's interpreter (where Triton is installed)."""
    run_under_interpreter("test_fused_loss", "assert_one_pass_matches_cross_entropy('cpu', (4096, 5000))")


def test_without_triton_the_one_pass_path_is_refused_and_never_chosen(monkeypatch):
    from attention_course.core import fused_loss

    monkeypatch.setattr(fused_loss, "triton", None)
    assert not fused_loss.one_pass_available("cuda") and not fused_loss.one_pass_available("cpu")
    with pytest.raises(RuntimeError, match="needs Triton"):
        fused_loss.linear_cross_entropy(torch.randn(4, 8), torch.randn(10, 8), torch.zeros(4, dtype=torch.long),
                                        one_pass=True)


def test_the_gpt_benchmark_fuses_the_loss_only_where_the_one_pass_kernel_runs():
    from attention_course.core.device import pick_device

    assert not one_pass_available("cpu")
    fused_here = one_pass_available(pick_device())  # CUDA with Triton: fused; a CPU: the plain head
    assert gpt_step.bench_gpt("smoke", repeats=1)["config"]["fused_loss"] is fused_here
    assert gpt_step.bench_gpt("smoke", repeats=1, fused_loss=True)["config"]["fused_loss"] is True
    assert gpt_step.bench_gpt("smoke", repeats=1, fused_loss=False)["config"]["fused_loss"] is False
