"""The differentiable path on every available device and dtype (fixtures ``device``, ``dtype`` in conftest):
render, integrate, losses and the model give the CPU's numbers, on the device they were given."""

from __future__ import annotations

import pytest
import torch

from dflib.integrate import forward_differences, integrable_projection
from dflib.losses import DualFocusLoss, depth_loss, focal_variational_loss
from dflib.models import DualFocus, DualFocusConfig
from dflib.optics import ThinLens
from dflib.render import render_focal_stack

FOCUS = [0.1, 0.15, 0.3, 0.7, 1.5]


def test_integrate_recovers_a_surface(device, dtype):
    if device.type == "mps" and dtype == torch.float64:
        pytest.skip("MPS has no float64")
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 3, 12, 9, generator=g, dtype=dtype)
    z = (z - z.mean(dim=(-2, -1), keepdim=True)).to(device)
    gx, gy = forward_differences(z)
    out = integrable_projection(gx.requires_grad_(), gy)
    assert out.device.type == device.type and out.dtype == dtype
    # exact gradients give back the zero-mean surface itself
    torch.testing.assert_close(out, z, atol=1e-4 if dtype == torch.float32 else 1e-10, rtol=0)
    out.square().sum().backward()
    assert gx.grad is not None and torch.isfinite(gx.grad).all()


def test_render_matches_the_cpu(device):
    rgb = torch.rand(3, 24, 32, generator=torch.Generator().manual_seed(1))
    depth = torch.full((24, 32), 1.0)
    depth[:, 16:] = 0.2  # a step: occlusion at the edge
    cam = ThinLens(2.9e-3, 1.0, 12e-6)
    here = render_focal_stack(rgb, depth, cam, FOCUS, noise=False, device=device)
    cpu = render_focal_stack(rgb, depth, cam, FOCUS, noise=False, device="cpu")
    assert here.images.device.type == device.type and here.images.dtype == torch.float32
    torch.testing.assert_close(here.images.cpu(), cpu.images, atol=1e-4, rtol=0)


def test_losses_hand_worked(device, dtype):
    if device.type == "mps" and dtype == torch.float64:
        pytest.skip("MPS has no float64")
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=dtype, device=device, requires_grad=True)
    target = torch.tensor([[[[1.5, 2.0], [0.0, 6.0]]]], dtype=dtype, device=device)  # 0: invalid, not counted
    loss = depth_loss(pred, target)  # smooth-L1 (beta 1) of errors 0.5, 0, 2: (0.125 + 0 + 1.5) / 3
    assert loss.dtype == dtype and loss.device.type == device.type
    assert float(loss.detach()) == pytest.approx(1.625 / 3)
    loss.backward()
    assert pred.grad[0, 0, 1, 0] == 0  # the invalid pixel has no gradient
    one_peak = torch.tensor([0.1, 0.2, 0.4, 0.2, 0.1], dtype=dtype, device=device).view(1, 5, 1, 1)
    two_peaks = torch.tensor([0.3, 0.1, 0.2, 0.1, 0.3], dtype=dtype, device=device).view(1, 5, 1, 1)
    assert float(focal_variational_loss(one_peak)) == 0.0
    # peak at index 0 (first maximum): every rise after it costs its square, here 0.1² + 0.2²
    assert float(focal_variational_loss(two_peaks)) == pytest.approx(0.01 + 0.04)


def test_model_and_loss_match_the_cpu(device):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = DualFocus(DualFocusConfig.tiny()).eval()
    stack = torch.rand(1, 5, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    focus = torch.tensor([FOCUS])
    depth = torch.full((1, 1, 32, 32), 0.5)
    with torch.no_grad():
        cpu = model(stack, focus)
        here = model.to(device)(stack.to(device), focus.to(device))
    assert here["depth"].device.type == device.type
    torch.testing.assert_close(here["depth"].cpu(), cpu["depth"], atol=1e-4, rtol=1e-4)
    assert torch.allclose(here["prob"].sum(dim=1).cpu(), torch.ones(1, 32, 32), atol=1e-5)
    loss = DualFocusLoss(lambda_sv=0.1, lambda_fv=1.0)
    terms = loss(here, depth.to(device), focus.to(device))
    assert terms["total"].device.type == device.type and torch.isfinite(terms["total"])
    assert float(terms["total"]) == pytest.approx(float(terms["depth"] + 0.1 * terms["sv"] + terms["fv"]), rel=1e-6)
