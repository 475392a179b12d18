import pytest
import torch
import torch.nn.functional as F
from triton_interpreter import run_under_interpreter

from attention_course.core import fused_mlp
from attention_course.core.attention import TransformerBlock
from attention_course.core.gpt import GPT, GPTConfig


def assert_fused_mlp_matches_the_plain_one(device: str, dtype=torch.float32, shapes=((70, 48, 96), (33, 40, 72))):
    """The Triton path's output and three gradients against the float64 composition of ``F.linear`` and ``F.gelu``,
    for shapes that are and are not whole numbers of tiles. In float32 they must agree closely; in 16-bit floats
    the fused path's error may be at most 1.5 times the plain 16-bit path's own (rounding, not a wrong formula)."""
    for rows, width, hidden in shapes:
        generator = torch.Generator().manual_seed(rows * width)
        x = torch.randn(rows, width, generator=generator)
        fc = 0.2 * torch.randn(hidden, width, generator=generator)
        proj = 0.2 * torch.randn(width, hidden, generator=generator)
        grad = torch.randn(rows, width, generator=generator).to(device, dtype)
        inputs = [t.to(device, dtype).requires_grad_() for t in (x, fc, proj)]
        exact = [t.detach().double().requires_grad_() for t in inputs]
        expected = F.linear(F.gelu(F.linear(exact[0], exact[1])), exact[2])
        expected = [expected, *torch.autograd.grad(expected, exact, grad.double())]
        got = fused_mlp.gelu_mlp(*inputs, fused=True)
        got = [got, *torch.autograd.grad(got, inputs, grad)]
        if dtype == torch.float32:
            for mine, reference in zip(got, expected, strict=True):
                torch.testing.assert_close(mine.double(), reference, atol=1e-5, rtol=1e-4)
            continue
        plain = F.linear(F.gelu(F.linear(*inputs[:2])), inputs[2])
        plain = [plain, *torch.autograd.grad(plain, inputs, grad)]
        for name, mine, ours, reference in zip(("out", "dx", "dfc", "dproj"), got, plain, expected, strict=True):
            fused_error = (mine.double() - reference).abs().max().item()
            plain_error = (ours.double() - reference).abs().max().item()
            assert fused_error <= 1.5 * plain_error + 1e-6, (name, rows, fused_error, plain_error)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the fused MLP runs on CUDA (Triton)")
def test_fused_mlp_matches_the_plain_one_on_a_gpu():
    assert_fused_mlp_matches_the_plain_one("cuda", torch.bfloat16, shapes=((70, 48, 96), (300, 64, 256), (1024, 768, 3072)))


def test_fused_mlp_in_triton_interpreter():
    """The same check on the CPU through Triton's interpreter, in float32 (the interpreter's bfloat16 products are
    wrong)."""
    run_under_interpreter("test_fused_mlp", "assert_fused_mlp_matches_the_plain_one('cpu')")


def test_off_cuda_the_plain_path_runs_and_forcing_the_fused_one_is_refused():
    x, fc, proj = torch.randn(5, 8), torch.randn(32, 8), torch.randn(8, 32)
    torch.testing.assert_close(fused_mlp.gelu_mlp(x, fc, proj), F.linear(F.gelu(F.linear(x, fc)), proj))
    if not fused_mlp.fused_mlp_available("cpu"):
        with pytest.raises(RuntimeError, match="needs Triton and a CUDA tensor"):
            fused_mlp.gelu_mlp(x, fc, proj, fused=True)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"expected x \(..., d\), fc_weight \(hidden, d\)"):
        fused_mlp.gelu_mlp(torch.randn(5, 8), torch.randn(32, 7), torch.randn(7, 32))
    with pytest.raises(ValueError, match="proj_weight"):
        fused_mlp.gelu_mlp(torch.randn(5, 8), torch.randn(32, 8), torch.randn(8, 31))


def test_a_block_with_the_fused_mlp_needs_no_biases_and_computes_the_same():
    with pytest.raises(ValueError, match="bias=False"):
        TransformerBlock(16, 2, fused_mlp=True)
    config = dict(vocab_size=31, block_size=8, n_layer=2, n_head=2, d_model=16, bias=False)
    torch.manual_seed(0)
    plain, fused = GPT(GPTConfig(**config)), GPT(GPTConfig(**config, fused_mlp=True))
    fused.load_state_dict(plain.state_dict())  # the same parameters: the option changes the computation only
    tokens = torch.randint(31, (2, 8))
    torch.testing.assert_close(fused(tokens, tokens)[1], plain(tokens, tokens)[1])
