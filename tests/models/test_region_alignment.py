"""Prior-guided regional alignment (section 2.2): each equation against a direct formula, plus invariances."""
import math

import pytest
import torch
import torch.nn.functional as F

from logoseg.models.region_alignment import (GuidanceIntegration, ObjectPrior, PriorGuidedRegionAlignment,
                                             RegionTextGuidance, RegionVisualGuidance, object_prior,
                                             region_assignment, region_means)

B, C, D, N, P = 2, 8, 6, 5, 3


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _inputs(h=6, w=6):
    visual = torch.randn(B, C, h, w, dtype=torch.float64)
    text = F.normalize(torch.randn(N, P, C, dtype=torch.float64), dim=-1)
    return visual, text


# ---- eq 1-2: object prior ----------------------------------------------------------------------------------

def test_object_prior_matches_double_loop():
    visual, text = _inputs(5, 7)
    expected = torch.zeros(B, N, dtype=torch.float64)
    for b in range(B):
        for n in range(N):
            t_bar = text[n].sum(0) / P
            total = 0.0
            for i in range(5):
                for j in range(7):
                    v = visual[b, :, i, j]
                    total += torch.dot(v, t_bar) / (v.norm() * t_bar.norm())
            expected[b, n] = total / (5 * 7)
    torch.testing.assert_close(object_prior(visual, text), expected)


def test_lambda_zero_is_exactly_no_prior():
    visual, text = _inputs()
    prior = ObjectPrior(0.0).double()
    t_hat, p = prior(visual, text)
    t_hat_other, _ = prior(10 * torch.randn_like(visual), text)
    t_bar = text.mean(dim=1).expand(B, N, C)
    assert torch.equal(t_hat, t_bar)
    assert torch.equal(t_hat_other, t_hat)
    assert p.shape == (B, N) and not torch.allclose(p, torch.zeros_like(p))


def test_lambda_one_is_eq2_as_written():
    visual, text = _inputs()
    t_hat, p = ObjectPrior(1.0).double()(visual, text)
    literal = torch.stack([torch.stack([sum(p[b, n] * text[n, k] for k in range(P)) / P for n in range(N)])
                           for b in range(B)])
    torch.testing.assert_close(t_hat, literal)


def test_lambda_half_is_halfway():
    visual, text = _inputs()
    t0, _ = ObjectPrior(0.0).double()(visual, text)
    t1, _ = ObjectPrior(1.0).double()(visual, text)
    t_half, _ = ObjectPrior(0.5).double()(visual, text)
    torch.testing.assert_close(t_half, (t0 + t1) / 2)


def test_learnable_lambda_starts_at_half_and_gets_gradient():
    visual, text = _inputs()
    prior = ObjectPrior('learnable').double()
    assert prior.lam.item() == 0.5
    t_hat, _ = prior(visual, text)
    t_hat.sum().backward()
    assert prior.theta.grad is not None and prior.theta.grad.abs().item() > 0
    assert [n for n, _ in prior.named_parameters()] == ['theta']


@pytest.mark.parametrize('bad', [-0.1, 1.5, 'adaptive', None, True, float('nan')])
def test_invalid_lambda_raises(bad):
    with pytest.raises(ValueError, match='learnable'):
        ObjectPrior(bad)


# ---- region partition ---------------------------------------------------------------------------------------

@pytest.mark.parametrize('h,w,grid', [(24, 24, 6), (10, 10, 3), (7, 13, 4), (5, 5, 5), (9, 4, 1)])
def test_region_assignment_is_partition(h, w, grid):
    assign = region_assignment(h, w, grid)
    assert assign.shape == (grid * grid, h * w)
    assert set(assign.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(assign.sum(0), torch.ones(h * w))  # each pixel in exactly one region
    assert (assign.sum(1) > 0).all()  # no empty region
    for i in range(h):  # the documented rule, pixel by pixel
        for j in range(w):
            k = math.floor(i * grid / h) * grid + math.floor(j * grid / w)
            assert assign[k, i * w + j] == 1


def test_region_means_equal_average_pooling_when_divisible():
    visual = torch.randn(B, C, 12, 8)
    means = region_means(visual, region_assignment(12, 8, 4))
    pooled = F.adaptive_avg_pool2d(visual, 4).flatten(2).transpose(1, 2)
    torch.testing.assert_close(means, pooled)


def test_region_assignment_too_small_raises():
    with pytest.raises(ValueError):
        region_assignment(3, 8, 4)
    with pytest.raises(ValueError):
        region_assignment(8, 3, 4)


# ---- eq 3-6: region-level textual guidance --------------------------------------------------------------------

def test_region_text_guidance_matches_formulas():
    K = 4
    v = torch.randn(B, K, C, dtype=torch.float64)
    t_hat = torch.randn(B, N, C, dtype=torch.float64)
    module = RegionTextGuidance(C, D, tau=7.0).double()
    weight, bias = torch.randn(D, 2 * C, dtype=torch.float64), torch.randn(D, dtype=torch.float64)
    with torch.no_grad():
        module.proj.weight.copy_(weight)
        module.proj.bias.copy_(bias)
    sim, g_region = module(v, t_hat)
    assert sim.shape == (B, K, N) and g_region.shape == (B, N, D)
    for b in range(B):
        for n in range(N):
            a = torch.stack([torch.dot(v[b, k], t_hat[b, n]) / (v[b, k].norm() * t_hat[b, n].norm())
                             for k in range(K)])  # eq 3
            torch.testing.assert_close(sim[b, :, n], a)
            e = torch.exp(7.0 * a)
            w = e / e.sum()  # eq 4
            m = sum(w[k] * v[b, k] for k in range(K))  # eq 5
            torch.testing.assert_close(g_region[b, n], weight @ torch.cat([m, t_hat[b, n]]) + bias)  # eq 6


def test_region_weights_sum_to_one_over_regions():
    module = RegionTextGuidance(C, D)
    sim, _ = module(torch.randn(B, 9, C), torch.randn(B, N, C))
    weights = module.region_weights(sim)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(B, N))
    assert not torch.allclose(weights.sum(dim=2), torch.ones(B, 9))  # normalised over k, not over n


# ---- region-level visual guidance ------------------------------------------------------------------------------

def test_visual_pooling_weights_masked_softmax():
    h, w, grid = 7, 5, 2
    assign = region_assignment(h, w, grid)
    module = RegionVisualGuidance(C, D)
    weights = module.pooling_weights(torch.randn(B, C, h, w), assign)
    assert weights.shape == (B, grid * grid, h * w)
    assert torch.equal(weights * (1 - assign), torch.zeros_like(weights))  # exactly zero outside
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, grid * grid))
    assert (weights[assign.expand_as(weights).bool()] > 0).all()


def test_visual_guidance_matches_formula():
    h, w, grid = 6, 4, 2
    visual = torch.randn(B, C, h, w, dtype=torch.float64)
    assign = region_assignment(h, w, grid, dtype=torch.float64)
    module = RegionVisualGuidance(C, D, hidden_dim=3).double()
    g_image = module(visual, assign)
    tokens = visual.flatten(2).transpose(1, 2)  # (B, h*w, C)
    logits = module.score[2](F.gelu(module.score[0](tokens))).squeeze(-1)
    for b in range(B):
        for k in range(grid * grid):
            idx = assign[k].nonzero().squeeze(1)
            e = torch.exp(logits[b, idx] - logits[b, idx].max())
            pooled = (e[:, None] * tokens[b, idx]).sum(0) / e.sum()
            torch.testing.assert_close(g_image[b, k], module.proj(pooled))


def test_perturbing_one_region_changes_only_its_embedding():
    h, w, grid = 10, 10, 3
    assign = region_assignment(h, w, grid)
    module = RegionVisualGuidance(C, D)
    visual = torch.randn(B, C, h, w)
    perturbed = visual.clone().flatten(2)
    perturbed[:, :, assign[4].bool()] += torch.randn(B, C, int(assign[4].sum()))
    before = module(visual, assign)
    after = module(perturbed.view_as(visual), assign)
    changed = (before - after).abs().amax(dim=(0, 2)) > 1e-6
    assert changed.tolist() == [k == 4 for k in range(grid * grid)]


# ---- eq 7: integration -------------------------------------------------------------------------------------

def test_integration_matches_eq7_and_is_constant_per_region():
    h, w, grid = 10, 10, 3
    K = grid * grid
    assign = region_assignment(h, w, grid, dtype=torch.float64)
    g_image = torch.randn(B, K, D, dtype=torch.float64)
    g_region = torch.randn(B, N, D, dtype=torch.float64)
    sim = torch.rand(B, K, N, dtype=torch.float64) * 2 - 1
    module = GuidanceIntegration(D, beta=5.0).double()
    guidance = module(g_image, g_region, sim, assign, (h, w))
    assert guidance.shape == (B, D, h, w)
    flat = guidance.flatten(2)
    for b in range(B):
        for k in range(K):
            e = torch.exp(5.0 * sim[b, k])
            g_text = module.text_proj(sum(e[n] / e.sum() * g_region[b, n] for n in range(N)))
            ei, et = torch.exp(g_image[b, k].norm()), torch.exp(g_text.norm())
            alpha = ei / (ei + et)
            expected = alpha * g_image[b, k] + (1 - alpha) * g_text
            pixels = assign[k].bool()
            torch.testing.assert_close(flat[b][:, pixels], expected[:, None].expand(D, int(pixels.sum())))
            assert torch.equal(flat[b][:, pixels], flat[b][:, pixels][:, :1].expand_as(flat[b][:, pixels]))


def test_integration_alpha_is_stable_for_large_norms():
    K = 4
    assign = region_assignment(4, 4, 2)
    module = GuidanceIntegration(D)
    guidance = module(1e4 * torch.randn(B, K, D), 1e4 * torch.randn(B, N, D), torch.randn(B, K, N), assign,
                      (4, 4))
    assert torch.isfinite(guidance).all()


# ---- composed module ---------------------------------------------------------------------------------------

@pytest.mark.parametrize('h,w,grid', [(10, 10, 3), (12, 12, 6), (7, 9, 2)])
def test_alignment_shapes(h, w, grid):
    module = PriorGuidedRegionAlignment(C, D, region_grid=grid)
    guidance, sim = module(torch.randn(B, C, h, w), torch.randn(B, N, C))
    assert guidance.shape == (B, D, h, w)
    assert sim.shape == (B, grid * grid, N)


@pytest.mark.parametrize('h,w,regions_per_side', [(2, 5, 2), (5, 3, 3), (3, 3, 3), (1, 9, 1)])
def test_a_map_smaller_than_the_grid_uses_min_r_h_w_regions_per_side(h, w, regions_per_side):
    module = PriorGuidedRegionAlignment(C, D, region_grid=4).double()
    visual, t_hat = torch.randn(B, C, h, w, dtype=torch.float64), torch.randn(B, N, C, dtype=torch.float64)
    guidance, sim = module(visual, t_hat)
    assert sim.shape == (B, regions_per_side ** 2, N) and guidance.shape == (B, D, h, w)
    assign = region_assignment(h, w, regions_per_side, dtype=torch.float64)
    torch.testing.assert_close(sim, module.text_guidance(region_means(visual, assign), t_hat)[0])


def test_alignment_similarity_uses_region_means():
    visual, t_hat = torch.randn(B, C, 8, 8), torch.randn(B, N, C)
    _, sim = PriorGuidedRegionAlignment(C, D, region_grid=4)(visual, t_hat)
    v = F.adaptive_avg_pool2d(visual, 4).flatten(2).transpose(1, 2)
    torch.testing.assert_close(sim, F.cosine_similarity(v[:, :, None], t_hat[:, None], dim=-1))


def test_alignment_composes_the_parts():
    module = PriorGuidedRegionAlignment(C, D, region_grid=3).double()
    visual = torch.randn(B, C, 10, 10, dtype=torch.float64)
    t_hat = 3 * torch.randn(B, N, C, dtype=torch.float64)
    guidance, sim = module(visual, t_hat)
    assign = region_assignment(10, 10, 3, dtype=torch.float64)
    sim_ref, g_region = module.text_guidance(region_means(visual, assign), t_hat)
    g_image = module.visual_guidance(visual, assign)
    torch.testing.assert_close(sim, sim_ref)
    torch.testing.assert_close(guidance, module.integration(g_image, g_region, sim_ref, assign, (10, 10)))


def test_class_permutation_equivariance():
    module = PriorGuidedRegionAlignment(C, D, region_grid=3, tau=10.0, beta=10.0).double()
    visual = torch.randn(B, C, 10, 10, dtype=torch.float64)
    t_hat = torch.randn(B, N, C, dtype=torch.float64)
    perm = torch.randperm(N)
    while torch.equal(perm, torch.arange(N)):
        perm = torch.randperm(N)
    guidance, sim = module(visual, t_hat)
    guidance_p, sim_p = module(visual, t_hat[:, perm])
    torch.testing.assert_close(sim_p, sim[:, :, perm])
    assign = region_assignment(10, 10, 3, dtype=torch.float64)
    _, g_region = module.text_guidance(region_means(visual, assign), t_hat)
    _, g_region_p = module.text_guidance(region_means(visual, assign), t_hat[:, perm])
    torch.testing.assert_close(g_region_p, g_region[:, perm])
    torch.testing.assert_close(guidance_p, guidance)


def test_alignment_backward_reaches_all_parameters():
    # float64: a parameter whose gradient is zero by construction shows ~1e-16 of rounding, far below 1e-8
    module = PriorGuidedRegionAlignment(C, D, region_grid=3).double()
    guidance, _ = module(torch.randn(B, C, 10, 10, dtype=torch.float64), torch.randn(B, N, C, dtype=torch.float64))
    (guidance * torch.randn_like(guidance)).sum().backward()
    for name, param in module.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().max() > 1e-8, name
