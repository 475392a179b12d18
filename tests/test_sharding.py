"""Lesson 04b: the memory and communication calculator on hand-computed cases, its activation count against what
autograd really saves, and the course's GPT trained with DDP, ZeRO-1, FSDP2 and tensor parallelism on 2 and 4
gloo processes: the same losses as one process, and the bytes each process holds as the calculator says."""

import pytest
import torch

from attention_course.core.gpt import GPT, GPTConfig
from attention_course.parallel import sharding as S

# A model small enough to count by hand: blocks 12 * 8^2 + 2 * 8 = 784 parameters, the rest 100*8 + 10*8 + 8 = 888.
SMALL = GPTConfig(vocab_size=100, block_size=10, n_layer=3, n_head=2, d_model=8, bias=False)


@pytest.mark.parametrize("config", [SMALL, GPTConfig(vocab_size=84, bias=True, **S.SHAPES["tiny"]),
                                    GPTConfig(vocab_size=50304, bias=False, **S.SHAPES["gpt2"])])
def test_parameter_count_matches_the_model(config):
    with torch.device("meta"):  # shapes only: GPT-2 small's 124 M numbers are never allocated
        model = GPT(config)
    assert S.param_count(config) == model.num_params(non_embedding=False)


def test_small_model_counted_by_hand():
    assert S.block_params(SMALL) == 784 and S.embedding_params(SMALL) == 888 and S.param_count(SMALL) == 3240
    # tensor parallel over 2: the 768 matrix numbers of each block halve, its 16 LayerNorm gains and the rest stay
    assert S.tensor_parallel_params(SMALL, 2) == 3 * (384 + 16) + 888


def test_memory_per_gpu_by_hand():
    fp32 = S.FP32
    ddp = S.memory_per_gpu(SMALL, 1, "ddp", 2, fp32)
    assert (ddp.params, ddp.grads, ddp.optimizer, ddp.buffers) == (12960, 12960, 25920, 12960)  # 3240 x 4, 4, 8, 4
    zero1 = S.memory_per_gpu(SMALL, 1, "zero1", 2, fp32)
    assert (zero1.params, zero1.grads, zero1.optimizer) == (12960, 12960, 12960)
    zero2 = S.memory_per_gpu(SMALL, 1, "zero2", 2, fp32)
    assert (zero2.params, zero2.grads, zero2.optimizer) == (6480, 6480, 12960)
    assert zero2.buffers == 3240 * 4 + 888 * 4  # every gathered weight, and the largest unit's gradient
    zero3 = S.memory_per_gpu(SMALL, 1, "zero3", 2, fp32)
    assert zero3.buffers == (888 + 2 * 784) * 4 + 888 * 4  # the root and two blocks gathered at a time
    tp = S.memory_per_gpu(SMALL, 1, "tp", 2, fp32)
    assert (tp.params, tp.optimizer, tp.buffers) == (2088 * 4, 2088 * 8, 0)
    single = S.memory_per_gpu(SMALL, 1, "single", 1, fp32)
    assert single.buffers == 0 and single.total == 3240 * 16 + single.activations
    assert S.memory_per_gpu(SMALL, 1, "zero3", 1, fp32).buffers == 0  # one rank gathers nothing


def test_activations_by_hand():
    # fp32, 10 tokens: per block 8 x (2x4 LayerNorm inputs + 2x4 product inputs + 12x4), head 8 x 8 + 100 x 8
    assert S.activation_bytes(SMALL, 1, S.FP32) == 10 * (3 * 8 * 64 + 8 * 8 + 100 * 8)
    # bf16 autocast: fp32 LayerNorm inputs, 2-byte rest, logits 2 + 4 bytes, plus the 16-bit weight copies
    assert S.activation_bytes(SMALL, 1) == 10 * (3 * 8 * 36 + 8 * 6 + 100 * 6) + (12 * 64 * 3 + 800) * 2
    # tensor parallel over 2 halves the 12 split numbers only
    assert S.activation_bytes(SMALL, 1, S.FP32, tp=2) == 10 * (3 * 8 * 40 + 8 * 8 + 100 * 8)
    assert S.activation_bytes(SMALL, 3, S.FP32) == 3 * S.activation_bytes(SMALL, 1, S.FP32)


@pytest.mark.parametrize("bf16", [False, True])
def test_activation_estimate_matches_what_autograd_saves(bf16):
    config = GPTConfig(vocab_size=512, block_size=64, n_layer=3, n_head=4, d_model=128, bias=False)
    torch.manual_seed(0)
    tokens = torch.randint(512, (2, 64))
    measured = S.measured_activation_bytes(GPT(config), tokens, tokens, bf16)
    estimate = S.activation_bytes(config, 2, S.BF16_AUTOCAST if bf16 else S.FP32)
    assert 1.0 <= measured / estimate < 1.02, (measured, estimate)  # only per-token statistics are left out


def test_communication_by_hand():
    grads = 3240 * 4
    (ddp,) = S.communication_per_step(SMALL, 1, "ddp", 4, S.FP32)
    assert ddp.name == "all-reduce" and ddp.sent_per_gpu == 2 * 3 / 4 * grads
    gather, scatter = S.communication_per_step(SMALL, 1, "zero3", 4, S.FP32)
    assert (gather.name, scatter.name) == ("all-gather", "reduce-scatter")
    assert gather.sent_per_gpu == 2 * 3 / 4 * grads and scatter.sent_per_gpu == 3 / 4 * grads
    for world in (2, 4, 8):  # ZeRO-2 sends what DDP sends; ZeRO-3 gathers twice: 1.5 times; ZeRO-1 too
        ddp_bytes = S.sent_per_gpu(SMALL, 1, "ddp", world)
        assert S.sent_per_gpu(SMALL, 1, "zero2", world) == pytest.approx(ddp_bytes)
        assert S.sent_per_gpu(SMALL, 1, "zero3", world) == pytest.approx(1.5 * ddp_bytes)
        assert S.sent_per_gpu(SMALL, 1, "zero1", world) == pytest.approx(1.5 * ddp_bytes)
    (tp,) = S.communication_per_step(SMALL, 1, "tp", 2)  # 4 all-reduces per block of 10 x 8 bf16 numbers
    assert tp.payload == 4 * 3 * 10 * 8 * 2 and tp.sent_per_gpu == tp.payload
    assert S.communication_per_step(SMALL, 1, "single", 1) == []
    assert S.sent_per_gpu(SMALL, 1, "ddp", 1) == 0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="strategy must be one of"):
        S.memory_per_gpu(SMALL, 1, "fsdp", 2)
    with pytest.raises(ValueError, match="1 for 'single'"):
        S.memory_per_gpu(SMALL, 1, "single", 2)
    with pytest.raises(ValueError, match="at least 1 sequence"):
        S.communication_per_step(SMALL, 0, "ddp", 2)
    with pytest.raises(ValueError, match="at least 1 sequence"):
        S.memory_per_gpu(SMALL, 0, "ddp", 2)
    with pytest.raises(ValueError, match="must divide n_head"):
        S.memory_per_gpu(SMALL, 1, "tp", 4)  # 2 heads cannot split 4 ways
    with pytest.raises(ValueError, match="shape must be one of"):
        S.model_config("gpt5")
    with pytest.raises(ValueError, match="same non-zero length"):
        S.max_loss_difference([1.0], [1.0, 2.0])


def test_interleaved_qkv_gives_each_rank_its_own_heads():
    linear = torch.nn.Linear(2, 12)  # d = 4: q rows 0-3, k rows 4-7, v rows 8-11
    with torch.no_grad():
        linear.weight.copy_(torch.arange(12.0)[:, None].expand(12, 2))
        linear.bias.copy_(torch.arange(12.0))
    S._interleave_qkv(linear, 2)
    # rank 0's six rows: its q (0, 1), k (4, 5), v (8, 9); rank 1's: 2, 3, 6, 7, 10, 11
    assert linear.bias.tolist() == [0, 1, 4, 5, 8, 9, 2, 3, 6, 7, 10, 11]
    assert linear.weight[:, 0].tolist() == linear.bias.tolist()


@pytest.fixture(scope="module")
def reference():
    data, vocab = S._training_data("shakespeare", "tiny")
    config = S.model_config("tiny", vocab)
    return config, S.train_steps(config, data, "single", 20, 8, torch.device("cpu"))


@pytest.mark.parametrize("processes", [2, 4])
def test_every_strategy_trains_like_one_process(reference, processes):
    config, single = reference
    assert len(single["losses"]) == 20 and single["losses"][-1] < single["losses"][0]  # it learns
    runs = S.run_torchrun(processes, list(S.DISTRIBUTED), "tiny", steps=20, batch=8, gloo=True, timeout=600)
    assert [run["strategy"] for run in runs] == list(S.DISTRIBUTED)
    for run in runs:
        assert run["world"] == processes and len(run["per_rank"]) == processes
        assert S.max_loss_difference(single["losses"], run["losses"]) < 1e-3, run["strategy"]
        per_process = 8 if run["strategy"] == "tp" else 8 // processes  # tensor parallel: every rank sees all 8
        expected = S.memory_per_gpu(config, per_process, run["strategy"], processes, S.FP32)
        if run["strategy"] in ("ddp", "tp"):  # what autograd saved on rank 0: its share, or a slice of each product
            assert 1.0 <= run["saved_bytes"] / expected.activations < 1.04, (run["strategy"], run["saved_bytes"])
        else:
            assert run["saved_bytes"] is None
        held = [rank["held_bytes"] for rank in run["per_rank"]]
        if run["strategy"] == "zero1":  # whole parameters are assigned to ranks: shares differ, they add up
            assert sum(h["optimizer"] for h in held) == S.param_count(config) * 8
            assert all(h["params"] == expected.params and h["grads"] == expected.grads for h in held)
            continue
        for h in held:  # the tiny shape's sizes divide by 2 and 4: FSDP2's shards carry no padding
            assert (h["params"], h["grads"], h["optimizer"]) == (expected.params, expected.grads, expected.optimizer)


def _stored_output(source_start: str) -> str:
    import nbformat

    from attention_course.core.course import find_root

    notebook = nbformat.read(find_root() / "notebooks" / "04b_beyond_data_parallel.ipynb", as_version=4)
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and c.source.startswith(source_start)]
    return "".join(output.get("text", "") for output in cell.outputs)


def test_decision_pages_quote_the_calculator_and_the_stored_run():
    from attention_course.core.course import find_root

    big, small = S.model_config("gpt-3.8b"), S.model_config("gpt2")

    def gib(config, batch, strategy, world):
        return S.memory_per_gpu(config, batch, strategy, world).gib()["total"]

    ddp, zero3 = gib(big, 2, "ddp", 4), gib(big, 2, "zero3", 4)
    figures = [f"{S.param_count(big) * 16 / 2**30:.1f} GiB", f"{ddp:.1f} GiB", f"{gib(big, 2, 'single', 1):.1f} GiB",
               f"{zero3:.1f} GiB", f"{round(100 * zero3 / ddp)} %", f"{gib(big, 2, 'tp', 4):.1f} GiB",
               f"{gib(small, 8, 'ddp', 4):.1f} GiB", f"{gib(small, 8, 'zero3', 4):.1f} GiB", f"{80e9 / 2**30:.1f} GiB"]
    figures += [f"{S.sent_per_gpu(big, 2, strategy, 4) / 1e9:.1f} GB" for strategy in ("ddp", "zero3", "tp")]
    # from the lesson's stored CPU outputs: the largest loss gap of the gloo run, the activation check
    gaps = [float(line.split()[-1]) for line in _stored_output("data, vocab").splitlines()[3:] if line.strip()]
    assert len(gaps) == len(S.DISTRIBUTED)
    ratios = [float(line.split("(")[-1].split(" x")[0]) for line in _stored_output("small = ").splitlines() if "(" in line]
    assert len(ratios) == 2
    figures += [f"{max(gaps):.1e}", f"{100 * (max(ratios) - 1):.1f} %"]
    from attention_course.tools import i18n

    english = (find_root() / "book" / "decision" / "lesson04b.md").read_text(encoding="utf-8")
    japanese = "\n".join(i18n.translations(i18n.CATALOGS / "decision" / "lesson04b.po").values())
    for page, text in (("book/decision/lesson04b.md", english), ("its Japanese catalog", japanese)):
        missing = [figure for figure in figures if figure not in text]
        assert not missing, f"{page} does not quote {missing}"


def test_bench_is_registered_and_renders_runs_and_out_of_memory(capsys):
    from attention_course.tools.cli import registered_benchmarks

    chosen = registered_benchmarks()["sharding"]
    assert chosen.run is S.bench_sharding
    base = {"shape": "gpt-3.8b", "vocab_size": S.GPT2_VOCAB, "world": 4, "batch": 8}
    measured = S.with_calculation({**base, "strategy": "zero3", "tokens_per_s": 1000.0, "step_ms": 8192.0,
                                   "per_rank": [{"peak_bytes": 40 * 2**30}, {"peak_bytes": 41 * 2**30}]}, S.BF16_AUTOCAST)
    assert measured["calculated_gib"]["total"] == pytest.approx(S.memory_per_gpu(
        S.model_config("gpt-3.8b"), 2, "zero3", 4).gib()["total"])  # 8 sequences over 4 GPUs: 2 each
    failed = S.with_calculation({**base, "strategy": "ddp", "out_of_memory": True, "per_rank": []}, S.BF16_AUTOCAST)
    text = chosen.render({"device_name": "GPU", "torch": "x", "profile": "gpu", "backend": "nccl",
                          "runs": [measured, failed]})
    assert "peak 41.00 GiB, calculated 30.51 GiB" in text and "ddp    out of memory (calculated 84.8 GiB" in text
    with pytest.raises(SystemExit):
        S.main(["--strategies", "ddp,fsdp"])
    assert "unknown strategy 'fsdp'" in capsys.readouterr().err


def test_communication_overlap_by_hand():
    # computation busy 0-20 us (two kernels), communication 15-35 us: 5 of its 20 us run under computation
    found = S.communication_overlap([(0, 10), (5, 20)], [(15, 30), (25, 35)])
    assert found == {"communication_ms": 0.02, "hidden_ms": 0.005, "hidden_share": 0.25}
    assert S.communication_overlap([(0, 10)], [(2, 4), (6, 8)])["hidden_share"] == 1.0  # all hidden
    assert S.communication_overlap([(0, 10)], [])["hidden_share"] is None
    with pytest.raises(ValueError, match="end at or after"):
        S.communication_overlap([(5, 1)], [(0, 1)])
