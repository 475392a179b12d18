"""The graded task 08.static_cache_update: the solution passes; each typical mistake fails with its hint."""

import pytest
import torch

from attention_course.grading import check
from attention_course.grading._core import CheckFailed


def solution(cache, k, v, start):
    batch, new = k.shape[0], k.shape[2]
    cache.keys[:batch, :, start : start + new] = k
    cache.values[:batch, :, start : start + new] = v
    visible = torch.arange(cache.keys.shape[2])[None, :] <= (start + torch.arange(new))[:, None]
    return cache.keys[:batch], cache.values[:batch], visible


def test_the_solution_passes():
    check("08.static_cache_update", solution)


def _replaces_the_buffers(cache, k, v, start):
    cache.keys, cache.values = cache.keys.clone(), cache.values.clone()  # new tensors: a CUDA graph would miss them
    return solution(cache, k, v, start)


def _at_zero(cache, k, v, start):
    return solution(cache, k, v, 0)[:2] + (_mask(cache, k, start),)


def _mask(cache, k, start, strict=False, shift=True):
    positions = torch.arange(cache.keys.shape[2])[None, :]
    rows = (start if shift else 0) + torch.arange(k.shape[2])[:, None]
    return positions < rows if strict else positions <= rows


def _sees_everything(cache, k, v, start):
    keys, values, _ = solution(cache, k, v, start)
    return keys, values, torch.ones(k.shape[2], cache.keys.shape[2], dtype=torch.bool)


def _strict(cache, k, v, start):
    keys, values, _ = solution(cache, k, v, start)
    return keys, values, _mask(cache, k, start, strict=True)


def _copy_only(cache, k, v, start):
    keys, values = cache.keys.clone(), cache.values.clone()
    batch, new = k.shape[0], k.shape[2]
    keys[:batch, :, start : start + new] = k
    values[:batch, :, start : start + new] = v
    return keys[:batch], values[:batch], _mask(cache, k, start)


@pytest.mark.parametrize("answer, words", [
    (_replaces_the_buffers, "never replace"), (_at_zero, "start position"), (_sees_everything, "hide the positions"),
    (_strict, "<="), (_copy_only, "in place")])
def test_typical_mistakes_fail_with_their_hint(answer, words):
    with pytest.raises(CheckFailed, match=words):
        check("08.static_cache_update", answer)


def test_a_mask_right_on_the_cases_but_wrong_in_generation_fails_on_the_tokens():
    calls = {"n": 0}

    def drifts(cache, k, v, start):
        calls["n"] += 1
        keys, values, visible = solution(cache, k, v, start)
        if calls["n"] > 3:  # after the three unit cases: forget the last written key
            visible = _mask(cache, k, start - 1)
        return keys, values, visible

    with pytest.raises(CheckFailed, match="drifts|shift"):
        check("08.static_cache_update", drifts)
