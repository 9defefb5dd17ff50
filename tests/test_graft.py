"""dflib.models.graft: a surface branch grafted onto a trained baseline starts as that baseline."""

from __future__ import annotations

import pytest
import torch

from dflib.models import DualFocus, DualFocusConfig
from dflib.models.graft import freeze_encoder_from, graft_surface_branch
from dflib.train import TrainConfig, load_model, train

BRANCH = dict(surface_units="planes", head_isolation=True, surface_norm=True)
_FIRST = "decoder.down.0.0.0.weight"


def _pair(seed: int = 0):
    torch.manual_seed(seed)
    baseline = DualFocus(DualFocusConfig.dfv_tiny())
    with torch.no_grad():  # a "trained" baseline: weights unlike any fresh initialisation
        for p in baseline.parameters():
            p.add_(0.05 * torch.randn_like(p))
    torch.manual_seed(seed + 1)
    return baseline, DualFocus(DualFocusConfig.tiny().replace(**BRANCH))


def test_the_grafted_model_predicts_what_its_baseline_predicts():
    baseline, model = _pair()
    head_before = {k: v.clone() for k, v in model.gradient_head.state_dict().items()}
    graft_surface_branch(model, baseline)
    stack, focus = torch.rand(2, 5, 3, 32, 32), torch.tensor([[0.1, 0.15, 0.3, 0.7, 1.5]] * 2)
    baseline.eval(), model.eval()
    with torch.no_grad():
        a, b = baseline(stack, focus), model(stack, focus)
    assert "surfaces" in b and b["surfaces"].abs().max() > 0  # the branch runs and makes surfaces ...
    torch.testing.assert_close(b["depth"], a["depth"], rtol=0, atol=1e-5)  # ... that the decoder does not read yet
    torch.testing.assert_close(b["prob"], a["prob"], rtol=0, atol=1e-5)
    w = model.decoder.down[0][0][0].weight
    cv = baseline.decoder.down[0][0][0].weight.shape[1]
    assert torch.equal(w[:, :cv], baseline.decoder.down[0][0][0].weight) and torch.count_nonzero(w[:, cv:]) == 0
    assert torch.equal(model.encoder.stem[0].weight, baseline.encoder.stem[0].weight)
    assert all(torch.equal(v, head_before[k]) for k, v in model.gradient_head.state_dict().items())  # fresh head


@pytest.mark.parametrize("preset", ["tiny", "mid"])
def test_baseline_init_starts_as_the_fresh_baseline_of_the_same_seed(preset):
    """DualFocusConfig.baseline_init: same draws as the baseline for every shared layer, surface inputs at zero."""
    from dflib.checkpoint import build_model

    cfg = {**BRANCH, "baseline_init": True}
    baseline, model = build_model(f"dfv_{preset}", 7, BRANCH), build_model(preset, 7, cfg)
    default = build_model(preset, 7, BRANCH)
    base_state, state = baseline.state_dict(), model.state_dict()
    cv = base_state[_FIRST].shape[1]
    assert state[_FIRST].shape[1] == cv + model.config.surface_channels
    assert torch.equal(state[_FIRST][:, :cv], base_state[_FIRST]) and torch.count_nonzero(state[_FIRST][:, cv:]) == 0
    assert all(torch.equal(state[k], v) for k, v in base_state.items() if k != _FIRST)
    # without it the decoder draws after the head, from a first convolution of another fan-in
    assert not torch.equal(default.state_dict()["decoder.head.weight"], base_state["decoder.head.weight"])
    stack, focus = torch.rand(2, 5, 3, 32, 32), torch.tensor([[0.1, 0.15, 0.3, 0.7, 1.5]] * 2)
    for mode in (True, False):
        baseline.train(mode), model.train(mode)
        with torch.no_grad():
            a, b = baseline(stack, focus), model(stack, focus)
        assert b["surfaces"].abs().max() > 0
        torch.testing.assert_close(b["depth"], a["depth"], rtol=0, atol=1e-5)
    # and the surface inputs get a gradient, so training can open them
    model.train()
    model(stack, focus)["depth"].mean().backward()
    assert model.decoder.down[0][0][0].weight.grad[:, cv:].abs().sum() > 0


def test_graft_refuses_what_is_not_a_baseline_of_the_model():
    baseline, model = _pair()
    with pytest.raises(ValueError, match="no surface branch"):
        graft_surface_branch(DualFocus(DualFocusConfig.dfv_tiny()), baseline)
    with pytest.raises(ValueError, match="already has a surface branch"):
        graft_surface_branch(model, DualFocus(DualFocusConfig.tiny()))
    with pytest.raises(ValueError, match="feature_channels"):
        graft_surface_branch(model, DualFocus(DualFocusConfig.dfv_tiny().replace(feature_channels=8)))
    with pytest.raises(ValueError, match="TrainConfig.init_graft"):
        TrainConfig(init_graft="yes")


def test_a_probe_gets_a_frozen_copy_of_the_source_encoder_and_nothing_else():
    source = DualFocus(DualFocusConfig.tiny().replace(**BRANCH))  # a DualFocus lends its encoder to a baseline
    with torch.no_grad():
        for p in source.parameters():
            p.add_(0.05 * torch.randn_like(p))
    torch.manual_seed(3)
    reader = DualFocus(DualFocusConfig.dfv_tiny())
    fresh = {k: v.clone() for k, v in reader.state_dict().items()}
    freeze_encoder_from(reader, source)
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in reader.state_dict().items() if k.startswith("encoder."))
    assert all(torch.equal(v, fresh[k]) for k, v in reader.state_dict().items() if not k.startswith("encoder."))
    assert not any(p.requires_grad for p in reader.encoder.parameters())
    assert all(p.requires_grad for p in reader.decoder.parameters())
    with pytest.raises(ValueError, match="feature_channels"):
        freeze_encoder_from(DualFocus(DualFocusConfig.dfv_tiny().replace(feature_channels=8)), source)
    with pytest.raises(ValueError, match="batch"):
        freeze_encoder_from(DualFocus(DualFocusConfig.dfv_tiny().replace(norm="batch")),
                            DualFocus(DualFocusConfig.tiny().replace(norm="batch")))
    with pytest.raises(ValueError, match="TrainConfig.probe_encoder"):
        TrainConfig(probe_encoder="")


@pytest.mark.slow
def test_a_probe_run_trains_its_decoder_on_the_frozen_encoder(tmp_path):
    small = dict(size=(32, 32), train_scenes=4, val_scenes=0, batch_size=2, warmup_steps=0, log_every=1,
                 ckpt_every=2, cache_dir=str(tmp_path / "cache"))
    source = train(TrainConfig(model="tiny", steps=2, lambda_sv=0.3, model_overrides=BRANCH, out_dir=str(tmp_path / "df"),
                               **small), progress=False)
    probe = TrainConfig(model="dfv_tiny", steps=3, probe_encoder=str(source.out_dir / "last.pt"),
                        out_dir=str(tmp_path / "probe"), **small)
    train(probe, progress=False)
    src, trained = (load_model(r / "last.pt", "cpu").state_dict() for r in (source.out_dir, tmp_path / "probe"))
    from dflib.checkpoint import build_model

    fresh = build_model("dfv_tiny", probe.seed).state_dict()
    assert all(torch.equal(v, src[k]) for k, v in trained.items() if k.startswith("encoder."))  # frozen, all 3 steps
    assert not torch.equal(trained["decoder.head.weight"], fresh["decoder.head.weight"])  # the decoder learnt
    import dataclasses

    more = train(dataclasses.replace(probe, steps=5), resume=True, progress=False)  # resumed: frozen again
    assert more.step == 5
    assert all(torch.equal(v, src[k]) for k, v in load_model(tmp_path / "probe" / "last.pt", "cpu").state_dict().items()
               if k.startswith("encoder."))
    with pytest.raises(ValueError, match="TrainConfig.probe_encoder"):
        train(TrainConfig(model="dfv_tiny", steps=1, probe_encoder=str(source.out_dir / "last.pt"),
                          model_overrides={"feature_channels": 8}, out_dir=str(tmp_path / "bad"), **small), progress=False)


@pytest.mark.slow
def test_a_grafted_run_trains_the_decoders_surface_inputs(tmp_path):
    small = dict(size=(32, 32), train_scenes=4, val_scenes=0, batch_size=2, warmup_steps=0, log_every=1,
                 ckpt_every=2, cache_dir=str(tmp_path / "cache"))
    base = train(TrainConfig(model="dfv_tiny", steps=2, out_dir=str(tmp_path / "dfv"), **small), progress=False)
    run = train(TrainConfig(model="tiny", steps=2, lambda_sv=0.3, model_overrides=BRANCH, init=str(base.out_dir / "last.pt"),
                            init_graft=True, out_dir=str(tmp_path / "graft"), **small), progress=False)
    w = load_model(run.out_dir / "last.pt", "cpu").decoder.down[0][0][0].weight
    assert torch.count_nonzero(w[:, 32:]) > 0  # the surfaces' slice left zero: the decoder learns to read them
    with pytest.raises(ValueError, match="TrainConfig.init_graft"):
        train(TrainConfig(model="dfv_tiny", steps=1, init=str(base.out_dir / "last.pt"), init_graft=True,
                          out_dir=str(tmp_path / "bad"), **small), progress=False)
    with pytest.raises(ValueError, match="TrainConfig.init_graft: there is nothing to graft onto"):
        train(TrainConfig(steps=1, init_graft=True, out_dir=str(tmp_path / "bad2"), **small), progress=False)


def test_surface_input_weight_reads_how_far_the_decoder_opened_its_surface_inputs():
    from dflib.checkpoint import build_model
    from dflib.diagnostics import surface_input_weight

    assert surface_input_weight(build_model("tiny", 0, {"baseline_init": True})) == 0.0
    default = build_model("tiny", 0)
    assert 0.7 < surface_input_weight(default) < 1.3  # both slices drawn from one uniform distribution
    w = default.decoder.down[0][0][0].weight
    with torch.no_grad():
        w[:, default.config.volume_channels:] *= 3.0
    assert 2.1 < surface_input_weight(default) < 3.9
    with pytest.raises(ValueError, match="no surface branch"):
        surface_input_weight(build_model("dfv_tiny", 0))


def test_two_path_training_supervises_the_depth_read_without_surfaces():
    """surface_two_path: in training the decoder also reads zeros in place of the surfaces, and that depth's
    L_depth joins the total; in evaluation nothing changes."""
    from dflib.checkpoint import build_model
    from dflib.losses import DualFocusLoss
    from dflib.diagnostics import swapped_surfaces

    one, two = build_model("tiny", 3, BRANCH), build_model("tiny", 3, {**BRANCH, "surface_two_path": True})
    stack, focus = torch.rand(2, 5, 3, 32, 32), torch.tensor([[0.1, 0.15, 0.3, 0.7, 1.5]] * 2)
    depth_gt = torch.full((2, 1, 32, 32), 0.4)
    for m in (one, two):
        m.eval()
    with torch.no_grad():
        assert "depth_blind" not in two(stack, focus)
        torch.testing.assert_close(two(stack, focus)["depth"], one(stack, focus)["depth"], rtol=0, atol=0)
    two.train()
    out = two(stack, focus)
    with torch.no_grad(), swapped_surfaces(two, torch.zeros_like):
        ref = two(stack, focus)["depth"]  # the same network read with zeros in place of its surfaces
    torch.testing.assert_close(out["depth_blind"], ref, rtol=0, atol=1e-6)
    assert not torch.allclose(out["depth_blind"], out["depth"])
    loss = DualFocusLoss(lambda_sv=0.0, lambda_fv=0.0)
    terms = loss(out, depth_gt, focus)
    blind = loss({"depth": out["depth_blind"], "prob": out["prob"]}, depth_gt, focus)["depth"]
    torch.testing.assert_close(terms["total"], terms["depth"] + blind)


def test_blind_encoder_trains_the_encoder_on_the_blind_path_alone():
    """blind_encoder: the encoder's gradient is that of the blind path's L_depth + λ_fv L_fv; the decoder still
    learns from the path that reads the surfaces; evaluation is unchanged."""
    from dflib.checkpoint import build_model
    from dflib.losses import DualFocusLoss

    two = {**BRANCH, "surface_two_path": True}
    ref, model = build_model("tiny", 5, two), build_model("tiny", 5, {**two, "blind_encoder": True})
    stack, focus = torch.rand(2, 5, 3, 32, 32), torch.tensor([[0.1, 0.15, 0.3, 0.7, 1.5]] * 2)
    depth_gt = 0.1 + 1.4 * torch.rand(2, 1, 32, 32)
    for m in (ref, model):
        m.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(stack, focus)["depth"], ref(stack, focus)["depth"], rtol=0, atol=0)
    loss = DualFocusLoss(lambda_sv=0.3, lambda_fv=1.0, sv_units="planes", sv_penalty="huber", depth_clip=True)

    def grads(m, terms_of):
        m.zero_grad()
        terms_of(m(stack, focus)).backward()
        return {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}

    model.train(), ref.train()
    full = grads(model, lambda out: loss(out, depth_gt, focus)["total"])
    blind_only = grads(model, lambda out: loss({"depth": out["depth_blind"], "prob": out["prob_blind"]},
                                               depth_gt, focus)["total"])
    enc = [n for n in full if n.startswith("encoder.")]
    assert enc and all(torch.allclose(full[n], blind_only[n], rtol=1e-4, atol=1e-7) for n in enc)
    # the decoder learns from both paths; in plain two-path training the main path reaches the encoder too
    assert not torch.allclose(full["decoder.head.weight"], blind_only["decoder.head.weight"])
    plain = grads(ref, lambda out: loss(out, depth_gt, focus)["total"])
    assert not all(torch.allclose(plain[n], full[n], rtol=1e-4, atol=1e-7) for n in enc)
    with pytest.raises(ValueError, match="blind_encoder needs surface_two_path"):
        DualFocusConfig.tiny().replace(blind_encoder=True)
