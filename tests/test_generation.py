"""The static KV cache, the static generator (greedy equality with the naive loop, errors) and the benchmark: lesson 08's
run in one process (``deploy.generation``) and the command's driver, one process per cell (``tools.bench_generation``)."""

import json

import pytest
import torch

from attention_course.core.attention import StaticKVCache
from attention_course.core.gpt import GPT, GPTConfig
from attention_course.deploy import generation
from attention_course.deploy.generation import OneRowLinear, StaticGenerator, kv_cache_bytes, sample_on_device
from attention_course.tools import bench_generation as driver

CONFIG = GPTConfig(vocab_size=65, block_size=64, n_layer=2, n_head=2, d_model=32)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GPT(CONFIG).eval()


def test_static_cache_writes_in_place_and_masks_the_unwritten_tail():
    cache = StaticKVCache(max_batch=2, max_len=6, n_heads=1, d_head=2)
    keys_before = cache.keys.data_ptr()
    k = torch.arange(8.0).view(2, 1, 2, 2)
    keys, values = cache.update(torch.tensor([0, 1]), k, -k)
    assert keys.data_ptr() == keys_before  # no new buffer: what a CUDA graph needs
    assert torch.equal(keys[:, :, :2], k) and torch.equal(values[:, :, :2], -k)
    assert keys[:, :, 2:].abs().sum() == 0
    later = cache.update(torch.tensor([2]), torch.ones(1, 1, 1, 2), torch.ones(1, 1, 1, 2))[0]
    assert later.shape == (1, 1, 6, 2) and torch.equal(later[0, 0, 2], torch.ones(2))
    assert cache.visible(torch.tensor([2])).tolist() == [[True, True, True, False, False, False]]
    assert cache.nbytes() == 2 * 2 * 1 * 6 * 2 * 4


def test_static_cache_rejects_too_large_a_batch_and_another_dtype():
    cache = StaticKVCache(max_batch=1, max_len=4, n_heads=1, d_head=2)
    with pytest.raises(ValueError, match="max_batch 1"):
        cache.update(torch.tensor([0]), torch.zeros(2, 1, 1, 2), torch.zeros(2, 1, 1, 2))
    with pytest.raises(ValueError, match="dtype"):
        cache.update(torch.tensor([0]), torch.zeros(1, 1, 1, 2, dtype=torch.float64), torch.zeros(1, 1, 1, 2))
    with pytest.raises(ValueError, match="positive"):
        StaticKVCache(0, 4, 1, 2)


@pytest.mark.parametrize("batch, prompt, new", [(1, 5, 30), (3, 12, 20), (2, 1, 40)])
def test_greedy_float32_gives_exactly_the_naive_loops_tokens(model, batch, prompt, new):
    tokens = torch.randint(0, CONFIG.vocab_size, (batch, prompt), generator=torch.Generator().manual_seed(batch))
    naive = model.generate(tokens, new, temperature=0)
    generator = StaticGenerator(model, max_batch=4, max_len=prompt + new)
    static = generator.generate(tokens, new)
    assert static.shape == (batch, prompt + new)
    assert torch.equal(static, naive)
    assert torch.equal(static, model.generate(tokens, new, temperature=0, use_cache=True))


@pytest.mark.parametrize("steps_per_graph", [1, 3, 7, 64])
def test_the_decode_loop_gives_the_same_tokens_for_any_chunk_of_steps(model, steps_per_graph):
    # the chunks a CUDA graph replays (here run eagerly: the same bookkeeping on the device's buffers); 22 decode
    # steps are whole chunks plus a remainder for 3 and 7, fewer than one chunk for 64
    tokens = torch.randint(0, CONFIG.vocab_size, (2, 6), generator=torch.Generator().manual_seed(3))
    generator = StaticGenerator(model, max_batch=2, max_len=40, steps_per_graph=steps_per_graph)
    assert torch.equal(generator.generate(tokens, 23), model.generate(tokens, 23, temperature=0))
    assert torch.equal(generator.generate(tokens[:1], 5), model.generate(tokens[:1], 5, temperature=0))


def test_one_row_linear_is_the_same_maths_and_only_for_one_row(model):
    layer = torch.nn.Linear(16, 5)
    one, two = torch.randn(1, 1, 16), torch.randn(2, 1, 16)
    with OneRowLinear():
        torch.testing.assert_close(layer(one), torch.nn.functional.linear(one, layer.weight, layer.bias))
    calls = []

    class Spy(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            calls.append(func)
            return func(*args, **(kwargs or {}))

    with Spy(), OneRowLinear():  # OneRowLinear runs first; its replacement ops reach the spy, not F.linear
        layer(one)
        layer(two)
    assert calls.count(torch.nn.functional.linear) == 1  # the two-row input kept the matrix product
    tokens = torch.randint(0, CONFIG.vocab_size, (1, 7), generator=torch.Generator().manual_seed(5))
    generator = StaticGenerator(model, max_batch=1, max_len=40, decode_linear="sum")
    assert torch.equal(generator.generate(tokens, 30), model.generate(tokens, 30, temperature=0))
    with pytest.raises(ValueError, match="decode_linear"):
        StaticGenerator(model, max_batch=1, decode_linear="gemm")


def test_compiled_generators_past_dynamos_recompile_limit_still_compile_and_agree():
    # Dynamo keeps at most recompile_limit programs per code object and, with fullgraph=True, fails past it. With the
    # limit at 2, a third compiled generator (two models, two batch sizes) failed on the code object they shared.
    torch._dynamo.reset()
    small = GPTConfig(vocab_size=65, block_size=16, n_layer=1, n_head=2, d_model=16)
    one, other = GPT(small).eval(), GPT(small).eval()
    tokens = torch.randint(0, small.vocab_size, (2, 5), generator=torch.Generator().manual_seed(11))
    with torch._dynamo.config.patch(recompile_limit=2):
        for gpt, batch in ((one, 1), (other, 1), (one, 2)):
            generator = StaticGenerator(gpt, max_batch=2, max_len=12, compile=True)
            assert torch.equal(generator.generate(tokens[:batch], 6), gpt.generate(tokens[:batch], 6, temperature=0))
            generator.close()
    torch._dynamo.reset()


@pytest.mark.parametrize("decode_attention", StaticKVCache.DECODE_ATTENTION)
def test_both_decode_attentions_give_the_naive_loops_tokens_and_logits(model, decode_attention):
    tokens = torch.randint(0, CONFIG.vocab_size, (2, 9), generator=torch.Generator().manual_seed(7))
    generator = StaticGenerator(model, max_batch=2, max_len=40, decode_attention=decode_attention)
    assert torch.equal(generator.generate(tokens, 25), model.generate(tokens, 25, temperature=0))
    generator.prefill(tokens)  # the cache holds the prompt; one decode step must give the full forward's logits
    full_logits, _ = model(torch.cat([tokens, tokens[:, :1]], dim=1))
    step_logits, _ = model(tokens[:, :1], caches=generator.caches, positions=torch.tensor([tokens.shape[1]]))
    torch.testing.assert_close(step_logits[:, -1], full_logits[:, -1], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="decode_attention"):
        StaticKVCache(1, 4, 1, 2, decode_attention="flash")


def test_a_generator_is_reused_across_prompts_and_smaller_batches(model):
    generator = StaticGenerator(model, max_batch=4)
    long = torch.randint(0, CONFIG.vocab_size, (4, 30), generator=torch.Generator().manual_seed(1))
    generator.generate(long, 20)  # leaves stale keys beyond the next, shorter prompt: they must stay hidden
    short = long[:2, :7]
    assert torch.equal(generator.generate(short, 25), model.generate(short, 25, temperature=0))


def test_prefill_graphs_capture_once_per_prompt_shape_and_replay_new_tokens(model, monkeypatch):
    """The bookkeeping of captured prompt passes, on the CPU: a stand-in 'graph' reruns the prompt pass on its fixed
    buffer, as a replay would. Each shape is captured once; a later prompt of that shape is copied into the buffer."""
    generator = StaticGenerator(model, max_batch=2)
    captured_shapes = []

    class Replay:
        def __init__(self, buffer, first):
            self.buffer, self.first = buffer, first

        def replay(self):
            self.first.copy_(generator.prefill(self.buffer))

    def capture(tokens):
        captured_shapes.append(tuple(tokens.shape))
        buffer = tokens.clone()
        first = torch.full((tokens.shape[0], 1), -1, dtype=torch.long)  # unwritten until the first replay
        return generation._PrefillGraph(tokens=buffer, first=first, graph=Replay(buffer, first))

    monkeypatch.setattr(generator, "_capture_prefill", capture)
    generator.prefill_graphs = True
    draw = torch.Generator().manual_seed(3)
    prompts = [torch.randint(0, CONFIG.vocab_size, shape, generator=draw) for shape in ((2, 6), (2, 6), (1, 9), (2, 6))]
    for prompt in prompts:
        assert torch.equal(generator.generate(prompt, 5), model.generate(prompt, 5, temperature=0))
    assert captured_shapes == [(2, 6), (1, 9)]
    first = generator._prefill_first(prompts[0])
    first.fill_(-7)  # the caller's copy: the stored output is untouched
    assert not torch.equal(generator._prefills[(2, 6)].first, first)


def test_generator_errors_say_what_was_expected(model):
    generator = StaticGenerator(model, max_batch=2, max_len=16)
    with pytest.raises(ValueError, match="exceed max_len 16"):
        generator.generate(torch.zeros(1, 10, dtype=torch.long), 7)
    with pytest.raises(ValueError, match="exceeds max_batch 2"):
        generator.generate(torch.zeros(3, 4, dtype=torch.long), 2)
    with pytest.raises(TypeError, match="int64"):
        generator.generate(torch.zeros(1, 4), 2)
    with pytest.raises(ValueError, match="on meta"):
        generator.generate(torch.zeros(1, 4, dtype=torch.long, device="meta"), 2)
    with pytest.raises(ValueError, match="must be positive"):
        generator.generate(torch.zeros(1, 4, dtype=torch.long), 0)
    with pytest.raises(ValueError, match="1..64"):
        StaticGenerator(model, max_batch=1, max_len=65)
    with pytest.raises(ValueError, match="steps_per_graph must be positive"):
        StaticGenerator(model, max_batch=1, steps_per_graph=0)
    with pytest.raises(ValueError, match="prefill_graphs needs compile=True and a model on a CUDA device"):
        StaticGenerator(model, max_batch=1, prefill_graphs=True)
    with pytest.raises(TypeError, match="course's GPT"):
        StaticGenerator(torch.nn.Linear(2, 2), max_batch=1)


def test_sampling_on_the_device_follows_the_distribution_and_top_k():
    torch.manual_seed(0)
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1, 1e-9]])).repeat(20_000, 1)
    counts = torch.bincount(sample_on_device(logits, temperature=1.0)[:, 0], minlength=4) / 20_000
    assert torch.allclose(counts, torch.tensor([0.7, 0.2, 0.1, 0.0]), atol=0.02)
    top1 = sample_on_device(logits[:100], temperature=1.0, top_k=1)
    assert (top1 == 0).all()
    assert torch.equal(sample_on_device(logits[:3], 0.0), torch.zeros(3, 1, dtype=torch.long))
    with pytest.raises(ValueError, match=">= 0"):
        sample_on_device(logits, -1.0)


def test_kv_cache_bytes_formula():
    assert kv_cache_bytes(GPTConfig(vocab_size=10, n_layer=12, d_model=768, n_head=12), 1, 768, 2) == \
        2 * 12 * 768 * 768 * 2


def test_bench_generation_json_on_the_smoke_profile(capsys, monkeypatch):
    from attention_course.deploy import generation
    from attention_course.tools.cli import main

    kept = []  # what a run cut short would have left after each model
    monkeypatch.setattr(generation, "_save", lambda result: kept.append(result))
    assert main(["bench", "generation", "--profile", "smoke", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [bool(k.get("partial")) for k in kept] == [True, True, False]  # after batch 1, after batch 2, whole
    assert len(kept[0]["rows"]) < len(kept[1]["rows"]) == len(result["rows"])
    assert kept[1]["rows"] == result["rows"] and kept[0]["device_name"] == result["device_name"]
    methods = {row["method"] for row in result["rows"]}
    assert {"naive loop", "growing cache, eager", "static cache, eager",
            "static cache, eager, fused decode attention", "static cache, eager, matmul linear layers"} <= methods
    assert any(method.startswith("transformers") for method in methods)
    assert {row["batch"] for row in result["rows"]} == {1, 2}
    for row in result["rows"]:
        assert row["tokens_per_s"] > 0 and row["ttft_s"] > 0 and row["first_s"] > 0
        if row["method"] != "naive loop" and not row["method"].startswith("transformers"):
            assert row["tokens_equal_to_naive"] == 1.0
        if row["method"].startswith("growing"):
            assert row["kv_bytes_measured"] == row["kv_bytes_formula"]
        if row["method"].startswith("static"):
            assert row["kv_bytes_allocated"] == row["kv_bytes_allocated_formula"]
    assert result["greedy_fp32_same_tokens"]["same_tokens"] is True
    assert result["greedy_fp32_same_tokens"]["model"] == "tiny"
    assert result["models"]["tiny"]["decode"] == {"steps_per_graph": 16, "decode_linear": "matmul",
                                                  "decode_attention": "matmul", "prefill_graphs": False,
                                                  "compile_options": None}
    assert result["device_name"] and result["floors"] == {}  # floors are judged on a GPU only


def test_load_note_names_the_run_and_the_load(monkeypatch):
    from attention_course.deploy import cost as serving

    monkeypatch.setattr(serving.os, "getloadavg", lambda: (5.0, 0.0, 0.0))
    monkeypatch.setattr(serving.os, "cpu_count", lambda: 2)
    note = serving.load_note()
    assert "this run" in note and "5.0 on 2 cores" in note and "busier" in note


def test_floors_judge_the_default_rows_not_the_variants():
    from attention_course.deploy.generation import floors

    def row(method, batch, rate, first_s=None):
        warm_s = 256 * batch / rate
        return {"model": "GPT-2 small", "method": method, "batch": batch, "prompt": 512, "tokens_per_s": rate,
                "decode_tokens_per_s": rate * 1.05, "warm_s": warm_s, "first_s": first_s or warm_s * 1.2}

    rows = [row("static cache, compiled", 1, 2100), row("static cache, compiled, matmul linear layers", 1, 1700),
            row("static cache, compiled", 8, 8000), row("naive loop", 8, 1000),
            row("transformers GPT2LMHeadModel, static cache", 1, 600),
            row("transformers GPT2LMHeadModel, static cache", 8, 9000)]
    info = {"GPT-2 small": {"decode_kernel_profile_batch1": {"ms_per_step": 0.42}}}
    result = floors(rows, info, gpu=True)
    assert result["batch 1 warm tokens/s >= 2000"] and result["batch 1 warm tokens/s"] == 2100
    assert result["static >= 5x naive at batch 8"] and result["static / naive at batch 8"] == 8
    assert result["at least as fast as transformers at batch 1"]
    assert not result["at least as fast as transformers at batch 8"]  # 8,000 against 9,000
    assert "within 1.3x of the kernels' time (batch 1)" not in result  # kernels under 0.5 ms: the plain floor holds
    slow = floors([row("static cache, compiled", 1, 1900)] + rows[1:], info, gpu=True)
    assert not slow["batch 1 warm tokens/s >= 2000"]
    assert floors(rows, info, gpu=False) == {}


def test_the_prompt_pass_runs_with_cudnn_attention_off_and_restores_it(model):
    # cuDNN attention's per-shape plan stalled a first 512-token prompt for seconds on a GPU: the prefill avoids it
    generator = StaticGenerator(model, max_batch=1)
    seen = []
    prefill = generator._prefill
    generator._prefill = lambda tokens: seen.append(torch.backends.cuda.cudnn_sdp_enabled()) or prefill(tokens)
    before = torch.backends.cuda.cudnn_sdp_enabled()
    torch.backends.cuda.enable_cudnn_sdp(True)  # on, so that the check can fail
    try:
        generator.generate(torch.zeros(1, 3, dtype=torch.long), 2)
        assert seen == [False]
        assert torch.backends.cuda.cudnn_sdp_enabled()
    finally:
        torch.backends.cuda.enable_cudnn_sdp(before)


def test_a_whole_result_replaces_the_partial_file(monkeypatch, tmp_path):
    from attention_course.deploy.generation import _save

    monkeypatch.setenv("ATTENTION_COURSE_RESULTS_DIR", str(tmp_path))
    result = {"device": "cpu", "device_name": "CPU", "profile": "smoke", "grid": "full", "rows": []}
    _save(dict(result, partial=True))
    assert [p.name for p in tmp_path.iterdir()] == ["generation_smoke_cpu_partial.json"]
    _save(result)
    assert [p.name for p in tmp_path.iterdir()] == ["generation_smoke_cpu.json"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_captured_prompt_passes_give_the_uncaptured_tokens_across_interleaved_shapes():
    torch.manual_seed(0)
    gpu_model = GPT(CONFIG).cuda().eval()
    captured = StaticGenerator(gpu_model, max_batch=2, compile=True)
    uncaptured = StaticGenerator(gpu_model, max_batch=2, compile=True, prefill_graphs=False)
    assert captured.prefill_graphs and not uncaptured.prefill_graphs
    draw = torch.Generator(device="cuda").manual_seed(5)
    for shape in ((2, 6), (1, 9), (2, 6), (1, 9), (2, 11)):
        prompt = torch.randint(0, CONFIG.vocab_size, shape, device="cuda", generator=draw)
        assert torch.equal(captured.generate(prompt, 7), uncaptured.generate(prompt, 7))
    assert set(captured._prefills) == {(2, 6), (1, 9), (2, 11)}


def test_close_frees_the_generator_at_once_and_refuses_to_generate_after(model):
    # The step holds the bound method ``self.decode_step``: a reference cycle, so ``del`` alone leaves the generator (and,
    # on a GPU, its CUDA graphs) to the cycle collector, which frees it at a moment nobody chooses. close() must not.
    import gc
    import weakref

    generator = StaticGenerator(model, max_batch=1, max_len=16)
    generator.generate(torch.zeros(1, 3, dtype=torch.long), 2)
    alive = weakref.ref(generator)
    gc.disable()  # no collection in between: only reference counts may free it
    try:
        generator.close()
        with pytest.raises(RuntimeError, match="closed"):
            generator.generate(torch.zeros(1, 3, dtype=torch.long), 2)
        del generator
        assert alive() is None
    finally:
        gc.enable()


def test_captures_get_a_cublas_workspace_of_their_own(monkeypatch):
    # cleared before the capture (so it allocates one in its own pool) and after (so no one else records that one)
    calls = []
    monkeypatch.setattr(torch._C, "_cuda_clearCublasWorkspaces", lambda: calls.append("clear"), raising=False)
    with generation._own_cublas_workspace():
        calls.append("capture")
    assert calls == ["clear", "capture", "clear"]
    with pytest.raises(KeyError), generation._own_cublas_workspace():
        raise KeyError("a failed capture")
    assert calls[3:] == ["clear", "clear"]


def test_selecting_cells_keeps_the_anchor_and_says_what_the_grid_holds():
    gpu = generation.GENERATION["gpu"]
    cut = generation._select(gpu, "lesson 05", [32])
    assert list(cut["models"]) == ["lesson 05"] and cut["batches"] == {"lesson 05": [32]}
    assert cut["hf_model"] == "GPT-2 small"  # transformers stays beside GPT-2 small: none for lesson 05 alone
    assert generation._select(gpu, None, [8])["batches"] == {"GPT-2 small": [8]}
    with pytest.raises(ValueError, match="'GPT-2 small'"):
        generation._select(gpu, "GPT-3", None)
    with pytest.raises(ValueError, match="batch 4 is not in this grid.*GPT-2 small: 1, 8, 32"):
        generation._select(gpu, "GPT-2 small", [4])


def test_isolated_cells_merge_in_the_grids_order_and_a_dead_child_is_recorded(monkeypatch):
    # the parent's side, with the children faked: cell (tiny, 1) dies, the others' rows and facts are merged
    s = dict(generation.GENERATION["smoke"], batches=[1, 2, 4])
    asked = []

    def child(spec, progress, timeout_s):
        asked.append((spec["model"], spec["batch"]))
        if spec["batch"] == 1:
            return None, {"model": "tiny", "batch": 1, "returncode": -11, "signal": "SIGSEGV"}
        rows = [{"method": "naive loop", "batch": spec["batch"]}, {"method": "static cache, eager", "batch": spec["batch"]}]
        info = {"tiny": {"params": 7, "compile_s": {spec["batch"]: 0.1 * spec["batch"]},
                         "prompt_forward_tokens_per_s": {f"{spec['batch']}x8": 100.0 * spec["batch"]},
                         "decode": {"last batch": spec["batch"]}}}
        return (rows, info), None

    monkeypatch.setattr(driver, "_in_child", child)
    kept = []
    rows, info, failures = driver._isolated_models(
        s, "smoke", False, torch.device("cpu"), False, lambda *a: kept.append(json.loads(json.dumps(a))), 60)
    assert asked == [("tiny", 1), ("tiny", 2), ("tiny", 4)]
    assert [(r["batch"], r["method"]) for r in rows] == [(2, "naive loop"), (2, "static cache, eager"),
                                                         (4, "naive loop"), (4, "static cache, eager")]
    assert info["tiny"]["compile_s"] == {2: 0.2, 4: 0.4}
    assert info["tiny"]["prompt_forward_tokens_per_s"] == {"2x8": 200.0, "4x8": 400.0}
    assert info["tiny"]["decode"] == {"last batch": 4} and info["tiny"]["params"] == 7
    assert failures == [{"model": "tiny", "batch": 1, "returncode": -11, "signal": "SIGSEGV"}]
    assert [len(k[0]) for k in kept] == [0, 2, 4] and all(k[2] == failures for k in kept)  # after every cell


def test_isolated_smoke_run_survives_a_child_that_aborts(monkeypatch, tmp_path):
    # real child processes: the first cell's aborts as it starts (as a segmentation fault would end it), the second's
    # rows and the float32 check still come back, and every file written on the way is valid JSON
    monkeypatch.setenv(driver.CRASH_CELL_ENV, "tiny:1")
    monkeypatch.setenv("ATTENTION_COURSE_RESULTS_DIR", str(tmp_path))
    saved = []
    save = generation._save
    monkeypatch.setattr(generation, "_save", lambda result: saved.append(json.loads(json.dumps(result))) or save(result))
    result = driver.bench_generation("smoke", isolate=True)
    assert result["isolated"] is True
    [failure] = result["failures"]
    assert (failure["model"], failure["batch"], failure["signal"], failure["timed_out"]) == ("tiny", 1, "SIGABRT", False)
    assert failure["returncode"] < 0 and "Aborted" in failure["output_tail"]  # faulthandler's report came back
    assert {row["batch"] for row in result["rows"]} == {2}
    assert {row["method"] for row in result["rows"]} == {"naive loop", "growing cache, eager", "static cache, eager"}
    assert all(row["tokens_equal_to_naive"] == 1.0 and row["tokens_per_s"] > 0 for row in result["rows"])
    assert list(result["models"]["tiny"]["compile_s"]) == [2]
    assert result["greedy_fp32_same_tokens"]["same_tokens"] is True
    assert [bool(s.get("partial")) for s in saved] == [True, True, False]
    assert [len(s["rows"]) for s in saved] == [0, 3, 3] and saved[0]["failures"] == result["failures"][:1]
    assert json.loads((tmp_path / "generation_smoke_cpu.json").read_text())["failures"][0]["signal"] == "SIGABRT"
    assert [p.name for p in tmp_path.iterdir()] == ["generation_smoke_cpu.json"]


def test_one_cell_from_the_command_line(capsys, monkeypatch, tmp_path):
    from attention_course.tools.cli import main

    monkeypatch.setenv("ATTENTION_COURSE_RESULTS_DIR", str(tmp_path))
    assert main(["bench", "generation", "--profile", "smoke", "--only", "tiny", "--batch", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["selection"] == {"model": "tiny", "batches": [2]} and result["isolated"] is False  # CPU: in process
    assert {row["batch"] for row in result["rows"]} == {2} and len(result["rows"]) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["generation_smoke_only-tiny-b2_cpu.json"]  # not the grid's file
    assert main(["bench", "generation", "--profile", "smoke", "--batch", "3"]) == 2
    assert "batch 3 is not in this grid (batch sizes tiny: 1, 2)" in capsys.readouterr().err
    assert main(["bench", "gpt", "--only", "tiny"]) == 2
    assert "apply to `bench generation`" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_a_generators_graphs_survive_another_generators_end_and_torch_compiles_workspace_clearing():
    # The suspected cause of the full grid's segmentation faults: graphs that recorded a cuBLAS workspace living in
    # another generator's pool (or in ordinary memory), freed when that generator's graphs went or when
    # torch.compile's CUDA graphs (transformers' static cache) cleared every workspace.
    import gc

    torch.manual_seed(0)
    config = GPTConfig(vocab_size=4096, block_size=64, n_layer=2, n_head=4, d_model=512)  # GEMMs that use a workspace
    gpu_model = GPT(config).cuda().eval()
    prompt = torch.randint(0, config.vocab_size, (8, 6), device="cuda")
    expected = gpu_model.generate(prompt, 20, temperature=0)
    older = StaticGenerator(gpu_model, max_batch=8, compile=True, decode_linear="matmul")
    older.generate(prompt, 20)
    newer = StaticGenerator(gpu_model, max_batch=8, compile=True, decode_linear="matmul")
    assert torch.equal(newer.generate(prompt, 20), expected)
    del older  # left to the cycle collector, as the benchmark did before close()
    gc.collect()
    torch._C._cuda_clearCublasWorkspaces()  # what torch.compile(mode="reduce-overhead") does around its captures
    torch.cuda.empty_cache()
    litter = [torch.full((1 << 20,), 7.0, device="cuda") for _ in range(64)]  # reuse whatever memory was freed
    longer = torch.randint(0, config.vocab_size, (8, 9), device="cuda")  # a new prompt shape: a new capture
    assert torch.equal(newer.generate(longer, 20), gpu_model.generate(longer, 20, temperature=0))
    assert torch.equal(newer.generate(prompt, 20), expected)
    torch.cuda.synchronize()
    assert all(bool((t == 7.0).all()) for t in litter)  # no replay wrote into memory that is no longer its own
    newer.close()


def test_resume_measures_only_the_cells_a_cut_short_run_lacks(monkeypatch, tmp_path):
    # a first run whose second cell fails (a time limit, say), then `--resume`: the first cell's rows come from its
    # file, the second is measured, and the earlier failure stays on record; a partial file comes first
    monkeypatch.setenv("ATTENTION_COURSE_RESULTS_DIR", str(tmp_path))
    asked, fail = [], {2}

    def child(spec, progress, timeout_s):
        asked.append(spec.get("batch", spec["task"]))
        if spec["task"] == "same_tokens":
            return {"same_tokens": True}, None
        if spec["batch"] in fail:
            return None, {"model": "tiny", "batch": spec["batch"], "returncode": -9, "signal": "SIGKILL",
                          "timed_out": True}
        rows = [{"model": "tiny", "method": "naive loop", "batch": spec["batch"], "prompt": 8, "tokens_per_s": 1.0}]
        return (rows, {"tiny": {"compile_s": {spec["batch"]: 0.5}, "params": 7}}), None

    monkeypatch.setattr(driver, "_in_child", child)
    first = driver.bench_generation("smoke", isolate=True)
    assert asked == [1, 2, "same_tokens"] and first["failures"][0]["timed_out"]
    asked.clear()
    fail.clear()
    second = driver.bench_generation("smoke", isolate=True, resume=True)
    assert asked == [2, "same_tokens"]  # batch 1 came from the partial file
    assert [row["batch"] for row in second["rows"]] == [1, 2]
    assert second["models"]["tiny"]["compile_s"] == {1: 0.5, 2: 0.5}
    assert [f.get("earlier_run") for f in second["failures"]] == [True]
    assert [p.name for p in tmp_path.iterdir()] == ["generation_smoke_cpu.json"]
    partial = tmp_path / "generation_smoke_cpu_partial.json"
    partial.write_text(json.dumps(dict(first, torch="0.1", partial=True)))
    with pytest.raises(ValueError, match="comes from another run.*torch '0.1'"):
        driver.bench_generation("smoke", isolate=True, resume=True)
    with pytest.raises(ValueError, match="needs the isolated run"):
        driver.bench_generation("smoke", resume=True)
    monkeypatch.delenv("ATTENTION_COURSE_RESULTS_DIR")
    with pytest.raises(ValueError, match="set that variable"):
        driver.bench_generation("smoke", isolate=True, resume=True)


def test_the_command_measures_in_process_what_the_lesson_measures_unless_it_isolates(monkeypatch):
    # the driver (tools) hands a run it does not isolate to the lesson's own function, with the same plan; an isolated
    # run never measures in this process
    measured = []
    monkeypatch.setattr(generation, "_run_here", lambda plan, progress: measured.append((plan, progress)) or {"ran": 1})
    assert generation.bench_generation("smoke", lesson=True, only="tiny", batches=[2]) == {"ran": 1}
    assert driver.bench_generation("smoke", lesson=True, only="tiny", batches=[2], progress=True) == {"ran": 1}
    (lesson_plan, lesson_progress), (command_plan, command_progress) = measured
    assert (lesson_progress, command_progress) == (False, True)
    assert lesson_plan == command_plan and lesson_plan.selection == {"model": "tiny", "batches": [2]}
    assert lesson_plan.lesson and not lesson_plan.compile and lesson_plan.grid["batches"] == {"tiny": [2]}
    monkeypatch.setattr(driver, "_in_child", lambda spec, progress, timeout_s: (None, {"task": spec["task"]}))
    isolated = driver.bench_generation("smoke", isolate=True)
    assert len(measured) == 2 and isolated["isolated"] is True and isolated["rows"] == []
    assert [f["task"] for f in isolated["failures"]] == ["cell", "cell", "same_tokens"]  # batches 1 and 2, the check


def test_the_module_lessons_import_holds_no_process_harness():
    # maintainers' tooling lives apart from the modules lessons import (house rule): no child processes, no command
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(generation))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported, "no import found: is the parser blind?"
    assert not imported & {"subprocess", "pickle", "signal", "threading", "tempfile", "argparse"}, imported
    assert not any("tools" in name or name.endswith("benchmarks") for name in imported), imported
    for name in ("_in_child", "_child_task", "_isolated_models", "_resumable", "_child_main", "CELL_TIMEOUT_S"):
        assert not hasattr(generation, name) and hasattr(driver, name), name


def test_each_batch_size_gets_a_decode_step_compiled_for_its_own_shapes():
    """A second batch size compiled in the same process must not turn the decode step shape-generic.

    torch.compile's "automatic dynamic" shapes take a dimension that changed between two compilations of one function
    for a varying one; lesson 08's earlier H100 run lost about half of batch 8's speed to it (batch 8 after batch 1 in
    one process: 5,391 tokens/s; in a process that compiled no other batch size: 9,900). The compiled decode steps are
    called directly (the prompt pass, compiled for any shape on purpose, would log the same words), and the
    compiler's log is read at the second batch size. Dynamo is reset first: earlier tests' compilations must not
    count against its recompile limit."""
    import logging

    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    torch._dynamo.reset()
    torch.manual_seed(0)
    tiny = GPT(GPTConfig(vocab_size=40, block_size=24, n_layer=1, n_head=2, d_model=16)).eval()
    position = torch.tensor([4])
    first = StaticGenerator(tiny, max_batch=2, max_len=24, compile=True)
    first._state(2).step(torch.ones(2, 1, dtype=torch.long), position)
    second = StaticGenerator(tiny, max_batch=3, max_len=24, compile=True)
    handler, logger = Keep(level=logging.INFO), logging.getLogger("torch.fx.experimental.symbolic_shapes")
    torch._logging.set_logs(dynamic=logging.INFO)
    logger.addHandler(handler)
    try:
        token = second._state(3).step(torch.ones(3, 1, dtype=torch.long), position)
    finally:
        logger.removeHandler(handler)
        torch._logging.set_logs()
    assert token.shape == (3, 1)
    assert any(message.startswith("create_env") for message in records), "no compilation was logged: no case ran"
    dynamic = [message for message in records if "dynamic" in message or message.startswith("create_symbol")]
    assert not dynamic, f"the decode step was compiled shape-generic at the second batch size: {dynamic[:3]}"
