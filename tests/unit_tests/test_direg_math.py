"""DiReg pure math against a direct dense computation on tiny tensors (table-driven)."""

from __future__ import annotations

import math

import pytest
import torch

from psa_guard.direg.math import dense_delta, is_finite, patched_weight, trim_top_k


def _factors(d_out: int, d_in: int, r: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(r, d_in, generator=g), torch.randn(d_out, r, generator=g)


@pytest.mark.parametrize("d_out,d_in,r,scale", [(3, 5, 1, 1.0), (6, 4, 2, 2.0), (8, 8, 4, 0.25)])
def test_dense_delta_matches_loops(d_out: int, d_in: int, r: int, scale: float) -> None:
    a, b = _factors(d_out, d_in, r, seed=d_out)
    expected = torch.zeros(d_out, d_in)
    for i in range(d_out):
        for j in range(d_in):
            expected[i, j] = scale * sum(b[i, t] * a[t, j] for t in range(r))
    got = dense_delta(a, b, scale)
    assert got.dtype == torch.float32 and got.shape == (d_out, d_in)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("a_shape,b_shape", [((2, 5), (3, 3)), ((2, 5, 1), (3, 2)), ((5,), (3, 5))])
def test_dense_delta_rejects_bad_shapes(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="LoRA factors"):
        dense_delta(torch.zeros(a_shape), torch.zeros(b_shape), 1.0)


@pytest.mark.parametrize("k,kept", [(100, 10), (50, 5), (10, 1), (1, 1), (25, 3), (99.9, 10)])
def test_trim_keeps_top_k_by_magnitude(k: float, kept: int) -> None:
    delta = torch.tensor([[0.1, -0.9, 0.3, -0.4, 0.5], [0.6, -0.7, 0.8, 0.2, -1.0]])
    out = trim_top_k(delta, k)
    assert int((out != 0).sum()) == kept
    assert out.shape == delta.shape
    survivors = out[out != 0].abs()
    dropped = delta[out == 0].abs()
    if dropped.numel():
        assert survivors.min() > dropped.max()
    torch.testing.assert_close(out[out != 0], delta[out != 0])  # values (and signs) kept


def test_trim_100_is_a_copy() -> None:
    delta = torch.randn(4, 4)
    out = trim_top_k(delta, 100)
    assert torch.equal(out, delta) and out.data_ptr() != delta.data_ptr()


@pytest.mark.parametrize("k", [0, -5, 100.5, True])
def test_trim_rejects_bad_k(k: float) -> None:
    with pytest.raises(ValueError, match="k_percent"):
        trim_top_k(torch.ones(2, 2), k)


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0, 3.0])
def test_patched_weight_is_w_minus_lambda_delta(lam: float) -> None:
    w, delta = torch.randn(4, 6), torch.randn(4, 6)
    expected = torch.tensor([[w[i, j].item() - lam * delta[i, j].item() for j in range(6)]
                             for i in range(4)])
    torch.testing.assert_close(patched_weight(w, delta, lam), expected, rtol=1e-5, atol=1e-6)


def test_patched_weight_keeps_dtype_and_does_not_mutate() -> None:
    w = torch.randn(3, 3, dtype=torch.bfloat16)
    before = w.clone()
    out = patched_weight(w, torch.ones(3, 3), 1.0)
    assert out.dtype == torch.bfloat16 and torch.equal(w, before)


@pytest.mark.parametrize("lam", [-1.0, math.inf, math.nan])
def test_patched_weight_rejects_bad_lambda(lam: float) -> None:
    with pytest.raises(ValueError, match="lambda"):
        patched_weight(torch.ones(2, 2), torch.ones(2, 2), lam)


def test_patched_weight_rejects_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="differ"):
        patched_weight(torch.ones(2, 3), torch.ones(3, 2), 1.0)


@pytest.mark.parametrize("value,finite", [(1.0, True), (math.nan, False), (math.inf, False),
                                          (-math.inf, False)])
def test_is_finite(value: float, finite: bool) -> None:
    t = torch.zeros(3)
    t[1] = value
    assert is_finite(t) is finite
