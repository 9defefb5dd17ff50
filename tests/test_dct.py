"""DCT-II / DCT-III via one FFT (Makhoul) against scipy.fft, plus autograd."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import torch

from dflib.dct import _dct_matrix, _makhoul_inverse, _makhoul_order, _reorder2, _unreorder2, dct, dct2, idct, idct2

LENGTHS = [1, 2, 3, 4, 5, 8, 9, 16, 31]


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_dct_idct_match_scipy_1d(n: int, dim: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.standard_normal((3, n, n + 2)) if dim != -1 else rng.standard_normal((2, 3, n))
    t = torch.from_numpy(x)
    ref = scipy.fft.dct(x, type=2, norm="ortho", axis=dim)
    np.testing.assert_allclose(dct(t, dim).numpy(), ref, rtol=0, atol=1e-12)
    ref_inv = scipy.fft.idct(x, type=2, norm="ortho", axis=dim)
    np.testing.assert_allclose(idct(t, dim).numpy(), ref_inv, rtol=0, atol=1e-12)
    # idct(type 2) is dct type 3
    np.testing.assert_allclose(
        idct(t, dim).numpy(), scipy.fft.dct(x, type=3, norm="ortho", axis=dim), atol=1e-12
    )


@pytest.mark.parametrize("hw", [(1, 1), (1, 2), (2, 1), (2, 2), (3, 5), (4, 4), (7, 9), (8, 6),
                                (5, 8), (16, 12)])
def test_dct2_idct2_match_scipy(hw: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(hw))
    x = rng.standard_normal((2, 3, *hw))
    t = torch.from_numpy(x)
    np.testing.assert_allclose(
        dct2(t).numpy(), scipy.fft.dctn(x, type=2, norm="ortho", axes=(-2, -1)), atol=1e-12
    )
    np.testing.assert_allclose(
        idct2(t).numpy(), scipy.fft.idctn(x, type=2, norm="ortho", axes=(-2, -1)), atol=1e-12
    )
    np.testing.assert_allclose(idct2(dct2(t)).numpy(), x, atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 7, 32])
def test_dct_matrix_is_the_orthonormal_dct(n: int) -> None:
    """C @ v is scipy's orthonormal DCT-II and C is orthogonal (so the inverse is Cᵀ)."""
    c = _dct_matrix(n, torch.float64, torch.device("cpu"))
    v = np.random.default_rng(n).standard_normal((n, 3))
    np.testing.assert_allclose((c @ torch.from_numpy(v)).numpy(), scipy.fft.dct(v, norm="ortho", axis=0),
                               rtol=0, atol=1e-13)
    torch.testing.assert_close(c @ c.T, torch.eye(n, dtype=torch.float64), rtol=0, atol=1e-13)
    assert _dct_matrix(n, torch.float32, torch.device("cpu")).dtype == torch.float32


def test_hand_worked_length_two() -> None:
    # DCT-II ortho of [a, b]: [(a + b)/sqrt2, (a - b)/sqrt2]  (cos(pi/4) = 1/sqrt2)
    x = torch.tensor([3.0, 1.0], dtype=torch.float64)
    expected = torch.tensor([4.0, 2.0], dtype=torch.float64) / np.sqrt(2.0)
    torch.testing.assert_close(dct(x), expected, rtol=0, atol=1e-15)
    torch.testing.assert_close(idct(expected), x, rtol=0, atol=1e-15)


def test_constant_maps_to_dc_only() -> None:
    x = torch.full((6, 10), 2.0, dtype=torch.float64)
    c = dct2(x)
    assert c[0, 0].item() == pytest.approx(2.0 * np.sqrt(60.0), abs=1e-12)
    c[0, 0] = 0
    assert c.abs().max().item() < 1e-12


def test_float32_and_orthogonality() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 17, 24, generator=g)
    c = dct2(x)
    assert c.dtype == torch.float32
    # Parseval: orthonormal transform keeps the energy
    torch.testing.assert_close(c.square().sum(), x.square().sum(), rtol=1e-5, atol=0)
    torch.testing.assert_close(idct2(c), x, rtol=0, atol=1e-5)


def test_autograd_matches_transpose() -> None:
    # Orthogonal: the adjoint of dct is idct, so grad of <u, dct(x)> is idct(u).
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 5, 7, dtype=torch.float64, generator=g, requires_grad=True)
    u = torch.randn(2, 5, 7, dtype=torch.float64, generator=g)
    (dct2(x) * u).sum().backward()
    torch.testing.assert_close(x.grad, idct2(u), rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(lambda t: dct(t), (x.detach()[0].requires_grad_(),))
    assert torch.autograd.gradcheck(lambda t: idct2(t), (x.detach().requires_grad_(),))


def test_bad_input() -> None:
    with pytest.raises(TypeError, match="int64"):
        dct(torch.arange(4))
    with pytest.raises(TypeError, match="Tensor"):
        dct2(np.zeros((3, 3)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(5,\)"):
        dct2(torch.zeros(5))
    with pytest.raises(ValueError, match="dim"):
        dct(torch.zeros(3, 4), dim=2)
    # an empty transform axis, or an empty batch, on any axis (torch's FFT itself fails on an empty batch)
    for x, f, kw in [(torch.zeros(0, 4), dct, {"dim": 0}), (torch.zeros(4, 0), idct, {"dim": 0}),
                     (torch.zeros(4, 0), dct, {}), (torch.zeros(3, 0), dct2, {}), (torch.zeros(0, 3), idct2, {}),
                     (torch.zeros(0, 3, 3), dct2, {})]:
        with pytest.raises(ValueError, match=r"x is empty, shape \("):
            f(x, **kw)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    x = torch.randn(3, 12, 17, dtype=torch.float64)
    torch.testing.assert_close(dct2(x.cuda()).cpu(), dct2(x), rtol=0, atol=1e-12)
    torch.testing.assert_close(idct2(x.cuda()).cpu(), idct2(x), rtol=0, atol=1e-12)


def test_makhoul_reordering_by_hand() -> None:
    """Even indices, then the odd ones reversed; the 2-D reordering acts on both axes and is undone."""
    assert _makhoul_order(5).tolist() == [0, 2, 4, 3, 1]
    assert _makhoul_order(6).tolist() == [0, 2, 4, 5, 3, 1]
    assert _makhoul_order(1).tolist() == [0]
    x = torch.arange(12.0).reshape(3, 4)  # x[i, j] = 4 i + j
    assert _reorder2(x).tolist() == [[0, 2, 3, 1], [8, 10, 11, 9], [4, 6, 7, 5]]
    y = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    assert torch.equal(_unreorder2(_reorder2(y)), y)
    for n in range(1, 10):  # the closed-form inverse permutation is argsort's
        assert torch.equal(_makhoul_inverse(n), torch.argsort(_makhoul_order(n)))
