"""The exact least-squares integrable projection (METHOD.md section 2)."""

from __future__ import annotations

import benchmark_scripts
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from dflib.integrate import (
    MATMUL_MAX_SIDES,
    _adjoint_differences,
    _solve,
    _solve_matmul,
    _solve_pocketfft,
    _solve_torch,
    forward_differences,
    integrable_projection,
    integrable_projection_full,
    neumann_poisson_solve,
    project_gradients,
)


def sparse_p(h: int, w: int) -> sp.csr_matrix:
    """The explicit P (forward differences) for row-major z.ravel(): [gx.ravel(); gy.ravel()]."""

    def d(n: int) -> sp.spmatrix:
        return sp.diags([-np.ones(n - 1), np.ones(n - 1)], [0, 1], shape=(n - 1, n))

    return sp.vstack([sp.kron(sp.eye(h), d(w)), sp.kron(d(h), sp.eye(w))]).tocsr()


def random_field(shape: tuple[int, ...], h: int, w: int, seed: int,
                 dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    gx = torch.randn(*shape, h, w - 1, generator=g, dtype=dtype)
    gy = torch.randn(*shape, h - 1, w, generator=g, dtype=dtype)
    return gx, gy


def stack_flat(gx: torch.Tensor, gy: torch.Tensor) -> np.ndarray:
    return np.concatenate([gx.numpy().ravel(), gy.numpy().ravel()])


@pytest.mark.parametrize("hw", [(7, 9), (16, 12), (2, 2), (2, 5), (9, 2)])
def test_equals_lsqr_on_explicit_p(hw: tuple[int, int]) -> None:
    h, w = hw
    gx, gy = random_field((), h, w, seed=h * w)  # random: not integrable
    p = sparse_p(h, w)
    gamma = stack_flat(gx, gy)
    sol = spla.lsqr(p, gamma, atol=1e-14, btol=1e-14, iter_lim=100 * h * w)[0]
    sol = sol - sol.mean()  # lsqr's minimum-norm solution is zero-mean anyway
    z = integrable_projection(gx, gy)
    assert z.shape == (h, w)
    assert np.abs(z.numpy().ravel() - sol).max() <= 1e-10
    # the field really was non-integrable: a non-zero residual is left
    assert np.linalg.norm(p @ z.numpy().ravel() - gamma) > 0.1


@pytest.mark.parametrize("hw", [(5, 7), (2, 2), (2, 5), (6, 2), (3, 3)])
def test_adjoint_differences_is_p_transpose(hw: tuple[int, int]) -> None:
    """PᵀΓ against the sparse Pᵀ, down to the 2-wide grids whose Dx has no interior column."""
    h, w = hw
    gx, gy = random_field((), h, w, seed=3)
    b = _adjoint_differences(gx, gy).numpy().ravel()
    np.testing.assert_allclose(b, sparse_p(h, w).T @ stack_flat(gx, gy), rtol=0, atol=1e-13)


def test_normal_equation_residual_float32_256() -> None:
    h = w = 256
    gx, gy = random_field((), h, w, seed=7, dtype=torch.float32)
    z = integrable_projection(gx, gy)
    assert z.dtype == torch.float32
    # residual Pᵀ(Pz - Γ), evaluated in float64 from the float32 solution
    zx, zy = forward_differences(z.double())
    r = _adjoint_differences(zx - gx.double(), zy - gy.double())
    rel = (r.norm() / _adjoint_differences(gx.double(), gy.double()).norm()).item()
    assert rel <= 5e-5


def step_surface(h: int, w: int) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                            torch.arange(w, dtype=torch.float64), indexing="ij")
    z = 0.3 * xx - 0.1 * yy + torch.sin(xx / 3.0) * torch.cos(yy / 4.0)
    z = z + 5.0 * (xx > w / 2) - 3.0 * ((yy - 0.5 * xx) > 2)  # step edges
    return z


def test_integrable_field_reproduced_up_to_constant() -> None:
    z0 = step_surface(23, 31)
    z = integrable_projection(*forward_differences(z0))
    torch.testing.assert_close(z, z0 - z0.mean(), rtol=0, atol=1e-10)
    # float32 as well (looser)
    z32 = integrable_projection(*forward_differences(z0.float()))
    torch.testing.assert_close(z32.double(), z0 - z0.mean(), rtol=0, atol=2e-3)


def test_zero_mean_and_hand_worked_2x2() -> None:
    # 2x2 grid, gx = [[1], [0]], gy = [[0, 0]]: P z = Γ has no exact solution
    # (the cycle sums to 1). Least squares spreads the misfit over the 4 edges:
    # z = [[-3/8, 3/8], [-1/8, 1/8]] (by symmetry and Lz = PᵀΓ).
    gx = torch.tensor([[1.0], [0.0]], dtype=torch.float64)
    gy = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    z = integrable_projection(gx, gy)
    expected = torch.tensor([[-3.0, 3.0], [-1.0, 1.0]], dtype=torch.float64) / 8
    torch.testing.assert_close(z, expected, rtol=0, atol=1e-14)
    gx, gy = random_field((4,), 6, 5, seed=1)
    assert integrable_projection(gx, gy).sum(dim=(-2, -1)).abs().max() < 1e-12


def test_idempotent_and_orthogonal() -> None:
    gx, gy = random_field((3,), 11, 14, seed=5)
    z = integrable_projection(gx, gy)
    px, py = project_gradients(gx, gy)
    # idempotent: projecting the integrable part again returns the same surface
    torch.testing.assert_close(integrable_projection(px, py), z, rtol=0, atol=1e-11)
    qx, qy = project_gradients(px, py)
    torch.testing.assert_close(qx, px, rtol=0, atol=1e-11)
    torch.testing.assert_close(qy, py, rtol=0, atol=1e-11)
    # orthogonal: the misfit Γ - P z* is orthogonal to the range of P
    r = _adjoint_differences(gx - px, gy - py)
    assert r.abs().max() < 1e-11
    u = torch.randn(3, 11, 14, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    ux, uy = forward_differences(u)
    inner = (ux * (gx - px)).sum() + (uy * (gy - py)).sum()
    assert abs(inner.item()) < 1e-10


def test_batch_shapes_equal_loop() -> None:
    gx, gy = random_field((2, 3, 4), 8, 10, seed=11)
    z = integrable_projection(gx, gy)
    assert z.shape == (2, 3, 4, 8, 10)
    for idx in np.ndindex(2, 3, 4):
        torch.testing.assert_close(z[idx], integrable_projection(gx[idx], gy[idx]),
                                   rtol=0, atol=1e-13)
    # non-contiguous inputs give the same answer
    zt = integrable_projection(gx.transpose(0, 2).contiguous().transpose(0, 2),
                               gy.transpose(0, 1).contiguous().transpose(0, 1))
    torch.testing.assert_close(zt, z, rtol=0, atol=0)


def test_full_size_convenience() -> None:
    gx, gy = random_field((2,), 6, 7, seed=13)
    g = torch.zeros(2, 2, 6, 7, dtype=torch.float64)
    g[:, 0, :, :-1] = gx
    g[:, 1, :-1, :] = gy
    g[:, 0, :, -1] = 100.0  # dropped by design
    g[:, 1, -1, :] = -100.0
    torch.testing.assert_close(integrable_projection_full(g), integrable_projection(gx, gy),
                               rtol=0, atol=0)


def test_full_size_gradient_is_the_pairs_and_zero_where_dropped() -> None:
    # the full map's own backward (one buffer) equals autograd through its two slices, to the bit
    torch.manual_seed(23)
    g = torch.randn(2, 3, 2, 7, 6, requires_grad=True)
    c = torch.randn(2, 3, 7, 6)
    (ours,) = torch.autograd.grad(integrable_projection_full(g), g, c)
    (ref,) = torch.autograd.grad(integrable_projection(g[..., 0, :, :-1], g[..., 1, :-1, :]), g, c)
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)
    (graph,) = torch.autograd.grad(integrable_projection_full(g), g, c, create_graph=True)  # the other branch
    torch.testing.assert_close(graph, ref, rtol=0, atol=0)
    assert ours[..., 0, :, -1].abs().max() == 0 and ours[..., 1, -1, :].abs().max() == 0
    assert ours[..., 0, :, :-1].abs().max() > 0 and ours[..., 1, :-1, :].abs().max() > 0
    g64 = torch.randn(2, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(integrable_projection_full, (g64,))
    assert torch.autograd.gradgradcheck(integrable_projection_full, (g64,))


def test_gradcheck_float64_batched() -> None:
    gx, gy = random_field((2, 1), 4, 5, seed=17)
    gx.requires_grad_(True)
    gy.requires_grad_(True)
    assert torch.autograd.gradcheck(integrable_projection, (gx, gy))
    assert torch.autograd.gradgradcheck(integrable_projection, (gx, gy))
    b = torch.randn(3, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(neumann_poisson_solve, (b,))


def test_backward_is_p_lplus() -> None:
    # d/dΓ <c, z(Γ)> = P L⁺ c  (L⁺ self-adjoint)
    gx, gy = random_field((2,), 9, 6, seed=19)
    gx.requires_grad_(True)
    gy.requires_grad_(True)
    c = torch.randn(2, 9, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    (integrable_projection(gx, gy) * c).sum().backward()
    ex, ey = forward_differences(neumann_poisson_solve(c))
    torch.testing.assert_close(gx.grad, ex, rtol=0, atol=1e-12)
    torch.testing.assert_close(gy.grad, ey, rtol=0, atol=1e-12)


@pytest.mark.parametrize("value", [0.0, 2.5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradients_finite_for_constant_and_zero_fields(value: float, dtype: torch.dtype) -> None:
    h, w = 16, 12
    gx = torch.full((2, h, w - 1), value, dtype=dtype, requires_grad=True)
    gy = torch.full((2, h - 1, w), value, dtype=dtype, requires_grad=True)
    z = integrable_projection(gx, gy)
    # a loss whose incoming gradient has a large constant (nullspace) component
    (z[..., 0, 0] * 1e3 + z.square().sum()).sum().backward()
    for grad in (gx.grad, gy.grad):
        assert torch.isfinite(grad).all()
        assert grad.abs().max() < 1e4  # an epsilon in place of λ_00 would blow this up
    # The mean of z is identically 0, so its gradient is exactly zero (up to rounding).
    gx.grad = gy.grad = None
    integrable_projection(gx, gy).sum().backward()
    tol = 1e-4 if dtype == torch.float32 else 1e-12
    assert gx.grad.abs().max() < tol and gy.grad.abs().max() < tol
    if value == 0.0:  # at the zero field, d||z||²/dΓ = 2 P L⁺ z = 0
        gx.grad = gy.grad = None
        integrable_projection(gx, gy).square().sum().backward()
        assert gx.grad.abs().max() == 0 and gy.grad.abs().max() == 0


def test_bad_inputs() -> None:
    gx, gy = random_field((), 5, 6, seed=0)
    with pytest.raises(ValueError, match=r"\(5, 5\).*\(4, 7\)"):
        integrable_projection(gx, gy[:, :-1].contiguous().new_zeros(4, 7))
    with pytest.raises(ValueError, match=r"\(4, 6\)"):
        integrable_projection(gx[:4], gy)  # H mismatch
    with pytest.raises(ValueError, match="2 x 2"):
        integrable_projection(torch.zeros(1, 4, dtype=torch.float64),
                              torch.zeros(0, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="2 x 2"):
        integrable_projection(torch.zeros(3, 0), torch.zeros(2, 1))
    with pytest.raises(TypeError, match="int64"):
        integrable_projection(gx.long(), gy.long())
    with pytest.raises(TypeError, match="bool"):
        integrable_projection(gx > 0, gy > 0)
    with pytest.raises(TypeError, match="float32.*float64|dtype"):
        integrable_projection(gx.float(), gy)
    with pytest.raises(TypeError, match="Tensor"):
        integrable_projection(gx.numpy(), gy)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(2, 5, 5\)"):
        integrable_projection(gx.expand(2, 5, 5), gy.expand(3, 4, 6))
    with pytest.raises(ValueError, match=r"\[\.\.\., 2, H, W\]"):
        integrable_projection_full(torch.zeros(3, 5, 6))
    with pytest.raises(ValueError, match="H, W >= 2"):
        forward_differences(torch.zeros(1, 5))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu(dtype: torch.dtype) -> None:
    gx, gy = random_field((2, 3), 20, 17, seed=23, dtype=dtype)
    z = integrable_projection(gx.cuda().requires_grad_(), gy.cuda())
    tol = 1e-4 if dtype == torch.float32 else 1e-11
    torch.testing.assert_close(z.detach().cpu(), integrable_projection(gx, gy), rtol=0, atol=tol)
    z.square().sum().backward()


ROUTES = {"torch": _solve_torch, "matmul": _solve_matmul}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("hw", [(7, 9), (16, 12), (2, 2), (9, 2), (3, 3), (4, 5), (2, 7)])
def test_every_route_equals_pocketfft_and_lsqr(route: str, hw: tuple[int, int]) -> None:
    """The three solve routes (pocketfft DCT, torch FFT as on CUDA, DCT matrices) are one map."""
    h, w = hw
    gx, gy = random_field((3, 2), h, w, seed=7)
    b = _adjoint_differences(gx, gy)
    z_cpu = _solve_pocketfft(b)
    z_route = ROUTES[route](b)
    assert torch.allclose(z_cpu, z_route, rtol=0, atol=1e-12)
    # and the route alone matches the explicit least-squares solve
    p = sparse_p(h, w)
    sol = spla.lsqr(p, stack_flat(gx[1, 0], gy[1, 0]), atol=1e-14, btol=1e-14,
                    iter_lim=100 * h * w)[0]
    assert np.abs(z_route[1, 0].numpy().ravel() - (sol - sol.mean())).max() <= 1e-10


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("hw", [(6, 9), (5, 4), (3, 2)])
def test_every_route_bounded_solve_and_self_adjointness(route: str, hw: tuple[int, int]) -> None:
    """Each route's floored solve (the bounded backward) is the pocketfft one, and all are symmetric maps.

    Self-adjointness <L⁺x, y> = <x, L⁺y> is what lets the backward pass reuse the solve;
    the row pairs (k, H - k) and the self-paired rows 0 and H/2 of the torch route are
    all exercised by even and odd H.
    """
    h, w = hw
    solve = ROUTES[route]
    g = torch.Generator().manual_seed(h * 10 + w)
    x, y = torch.randn(2, 3, h, w, generator=g, dtype=torch.float64)
    for floor in (0.0, 0.25, 10.0):
        lx = solve(x, floor)
        torch.testing.assert_close(lx, _solve_pocketfft(x, False, floor), rtol=0, atol=1e-12)
        assert abs((lx * y).sum() - (x * solve(y, floor)).sum()) <= 1e-10
    # a floor above every λ (max λ < 8) makes the solve 1/floor times the mean-free input
    torch.testing.assert_close(solve(x, 10.0), (x - x.mean(dim=(-2, -1), keepdim=True)) / 10.0,
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_float32_residual(route: str) -> None:
    """float32: the normal equations hold to float32 rounding."""
    gx, gy = random_field((4,), 32, 48, seed=5, dtype=torch.float32)
    b = _adjoint_differences(gx, gy)
    z = ROUTES[route](b)
    assert z.dtype == torch.float32
    ex, ey = forward_differences(z)
    residual = _adjoint_differences(ex, ey) - (b - b.mean(dim=(-2, -1), keepdim=True))
    assert residual.abs().max() <= 1e-4 * b.abs().max()
    assert z.mean(dim=(-2, -1)).abs().max() <= 1e-6


def test_projection_stays_float32_under_autocast() -> None:
    """bfloat16 autocast does not reach the solve: the DCT matrix products run in the input's dtype."""
    gx, gy = random_field((2,), 12, 16, seed=4, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = integrable_projection(gx, gy)
    assert z.dtype == torch.float32
    assert torch.equal(z, integrable_projection(gx, gy))


def test_cpu_route_depends_on_the_grid_size_only() -> None:
    """float32 grids with H + W up to MATMUL_MAX_SIDES take the DCT matrices, others pocketfft: bit for bit."""
    g = torch.Generator().manual_seed(0)
    small = torch.randn(3, 32, MATMUL_MAX_SIDES - 32, generator=g)
    large = torch.randn(3, 32, MATMUL_MAX_SIDES - 31, generator=g)
    assert torch.equal(_solve(small), _solve_matmul(small))
    assert torch.equal(_solve(large), _solve_pocketfft(large))
    assert torch.equal(_solve(small.double()), _solve_pocketfft(small.double()))
    assert torch.equal(_solve(small), _solve(small.clone()))  # same input, same numbers


def test_projection_leaves_its_inputs_and_a_solved_b_untouched() -> None:
    """The solve works in place on its own temporaries only."""
    gx, gy = random_field((2,), 6, 5, seed=3, dtype=torch.float32)
    b = _adjoint_differences(gx, gy)
    saved = [t.clone() for t in (gx, gy, b)]
    integrable_projection(gx, gy)
    neumann_poisson_solve(b)
    for before, after in zip(saved, (gx, gy, b)):
        assert torch.equal(before, after)


def test_non_contiguous_input_is_solved_correctly() -> None:
    b = torch.randn(8, 10, dtype=torch.float64)
    b_t = b.T  # a strided view [10, 8]
    assert torch.allclose(neumann_poisson_solve(b_t), neumann_poisson_solve(b_t.contiguous()),
                          rtol=0, atol=1e-13)


@pytest.mark.parametrize("h, w", [(6, 8), (7, 5), (2, 3)])
def test_compiled_solve_benchmark_route_is_the_exact_solve(h, w):
    """The route benchmarks/compiled_solve.py times (one real 2x2 map per bin and partner row) is L⁺, uncompiled."""
    cs = benchmark_scripts.load("compiled_solve")
    b = torch.randn(3, h, w, generator=torch.Generator().manual_seed(1))
    z = cs.route_solve(cs.compiled_route(h, w, compile_=False), b)
    torch.testing.assert_close(z, _solve(b), atol=1e-5, rtol=1e-5)
    lap = _adjoint_differences(*forward_differences(z))  # L z = b minus its mean
    torch.testing.assert_close(lap, b - b.mean((-2, -1), keepdim=True), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("h, w", [(6, 8), (7, 5), (2, 3)])
def test_transposed_solve_benchmark_route_is_the_exact_solve(h, w):
    """The route benchmarks/transposed_solve.py times (every FFT along the last axis) is L⁺ (float64)."""
    ts = benchmark_scripts.load("transposed_solve")
    b = torch.randn(3, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    z = ts.transposed_solve(b)
    torch.testing.assert_close(z, _solve_pocketfft(b), atol=1e-12, rtol=1e-12)
    lap = _adjoint_differences(*forward_differences(z))  # L z = b minus its mean
    torch.testing.assert_close(lap, b - b.mean((-2, -1), keepdim=True), atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("h, w", [(6, 8), (7, 5), (2, 3)])
def test_fftw_solve_benchmark_route_is_the_exact_solve(h, w):
    """The route benchmarks/fftw_solve.py times (FFTW's DCT-II and DCT-III, λ folded in) is L⁺ (float64).

    pyFFTW is no dependency of dflib: this runs where it is installed."""
    pytest.importorskip("pyfftw")
    fs = benchmark_scripts.load("fftw_solve")
    b = torch.randn(3, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    z = torch.from_numpy(fs.fftw_solver(tuple(b.shape), dtype="float64")["solve"](b.numpy()).copy())
    torch.testing.assert_close(z, _solve_pocketfft(b), atol=1e-12, rtol=1e-12)
    lap = _adjoint_differences(*forward_differences(z))  # L z = b minus its mean
    torch.testing.assert_close(lap, b - b.mean((-2, -1), keepdim=True), atol=1e-10, rtol=1e-10)
