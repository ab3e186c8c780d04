"""Prior-guided regional alignment (paper section 2.2): object prior, region text/visual guidance, integration.

Shapes: B batch, C CLIP joint-space dim, h x w feature grid, N classes, P prompts per class,
K = r * r regions, D guidance dim.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    'object_prior',
    'ObjectPrior',
    'region_assignment',
    'region_means',
    'RegionTextGuidance',
    'RegionVisualGuidance',
    'GuidanceIntegration',
    'PriorGuidedRegionAlignment',
]


def object_prior(visual: Tensor, text: Tensor) -> Tensor:
    """Object prior, eq 1: mean over pixels of cos(V_ij, Tbar_n), Tbar_n the mean of the class's prompts.

    Args:
        visual: V, (B, C, h, w).
        text: prompt embeddings T, (N, P, C).
    Returns:
        p, (B, N), each entry in [-1, 1].
    """
    v_unit = F.normalize(visual.flatten(2), dim=1)  # (B, C, h*w)
    t_unit = F.normalize(text.mean(dim=1), dim=-1)  # (N, C)
    # The pixel mean commutes with the dot product: average the unit pixel vectors once, then one (B,C)x(C,N).
    return v_unit.mean(dim=2) @ t_unit.t()


class ObjectPrior(nn.Module):
    """lambda-scaled prompt centres, eq 2: T_hat_n = (1 - lam + lam * p_n) * Tbar_n.

    lam = 1 is eq 2 as written (1/P sum_p p_n T_{n,p}); lam = 0 is exactly "no prior" (T_hat = Tbar).
    ``prior_lambda`` is a float in [0, 1] or 'learnable' (lam = sigmoid(theta), theta starts at 0 -> 0.5).
    """

    def __init__(self, prior_lambda: float | str = 1.0) -> None:
        super().__init__()
        self.learnable = prior_lambda == 'learnable'
        if self.learnable:
            self.theta = nn.Parameter(torch.zeros(()))
        else:
            valid = (isinstance(prior_lambda, (int, float)) and not isinstance(prior_lambda, bool)
                     and 0.0 <= prior_lambda <= 1.0)
            if not valid:
                raise ValueError(f"prior_lambda must be a float in [0, 1] or 'learnable', got {prior_lambda!r}")
            # A buffer (not saved in checkpoints) so lam follows the module's device and dtype.
            self.register_buffer('fixed_lambda', torch.tensor(float(prior_lambda)), persistent=False)

    @property
    def lam(self) -> Tensor:
        """lambda as a scalar tensor."""
        return torch.sigmoid(self.theta) if self.learnable else self.fixed_lambda

    def forward(self, visual: Tensor, text: Tensor) -> tuple[Tensor, Tensor]:
        """visual (B, C, h, w), text (N, P, C) -> (T_hat (B, N, C), p (B, N))."""
        prior = object_prior(visual, text)
        # Written as (1 - lam) + lam * p so that lam = 0 gives the weight 1 exactly, whatever p is.
        weight = (1 - self.lam) + self.lam * prior  # (B, N)
        t_hat = weight.unsqueeze(-1) * text.mean(dim=1)  # (B, N, C)
        return t_hat, prior

    def extra_repr(self) -> str:
        return "prior_lambda='learnable'" if self.learnable else f'prior_lambda={self.fixed_lambda.item():g}'


def region_assignment(h: int, w: int, grid: int, device: torch.device | str | None = None,
                      dtype: torch.dtype | None = None) -> Tensor:
    """0/1 matrix (K = grid*grid, h*w) putting pixel (i, j) in region (i*grid // h) * grid + (j*grid // w).

    A non-overlapping partition with no empty region for every h, w >= grid; when grid divides h and w the
    region means are grid x grid average pooling.
    """
    if grid < 1 or h < grid or w < grid:
        raise ValueError(f'region grid {grid} needs a feature map of at least {grid}x{grid}, got {h}x{w}')
    rows = torch.arange(h, device=device) * grid // h  # integer arithmetic: exact floor, no float rounding
    cols = torch.arange(w, device=device) * grid // w
    index = (rows[:, None] * grid + cols[None, :]).flatten()  # (h*w,) region of each pixel
    regions = torch.arange(grid * grid, device=device)
    return (regions[:, None] == index[None, :]).to(dtype or torch.get_default_dtype())


def region_means(visual: Tensor, assignment: Tensor) -> Tensor:
    """Mean feature of each region: visual (B, C, h, w), assignment (K, h*w) -> v (B, K, C)."""
    sums = torch.einsum('bcl,kl->bkc', visual.flatten(2), assignment.to(visual.dtype))
    return sums / assignment.sum(dim=1).to(visual.dtype).unsqueeze(-1)


class RegionTextGuidance(nn.Module):
    """Region-level textual guidance, eq 3-6.

    A_kn = cos(v_k, T_hat_n) (eq 3); w = softmax_k(tau A) (eq 4); m_n = sum_k w_kn v_k (eq 5);
    g_region[n] = W_t [m_n || T_hat_n] + b_t (eq 6).
    """

    def __init__(self, clip_dim: int, guidance_dim: int, tau: float = 100.0) -> None:
        super().__init__()
        self.tau = tau
        self.proj = nn.Linear(2 * clip_dim, guidance_dim)  # W_t, b_t

    def region_weights(self, similarity: Tensor) -> Tensor:
        """A (B, K, N) -> w (B, K, N), summing to 1 over the K regions of each class."""
        return torch.softmax(self.tau * similarity, dim=1)

    def forward(self, region_feats: Tensor, t_hat: Tensor) -> tuple[Tensor, Tensor]:
        """region_feats v (B, K, C), t_hat (B, N, C) -> (A (B, K, N), g_region (B, N, D))."""
        similarity = torch.einsum('bkc,bnc->bkn', F.normalize(region_feats, dim=-1), F.normalize(t_hat, dim=-1))
        prototypes = torch.einsum('bkn,bkc->bnc', self.region_weights(similarity), region_feats)
        # T_hat enters unnormalised: its magnitude is where the prior's strength reaches the model.
        g_region = self.proj(torch.cat([prototypes, t_hat], dim=-1))
        return similarity, g_region


class RegionVisualGuidance(nn.Module):
    """Region-level visual guidance: attention pooling of the visual tokens inside each region.

    A Linear-GELU-Linear MLP scores each token; a softmax restricted to the tokens of a region gives its
    pooling weights; the pooled (B, K, C) embedding is projected C -> D to match g_region. The last Linear has
    no bias: a constant added to every score of a region leaves its softmax unchanged (the bias would get a
    zero gradient).
    """

    def __init__(self, clip_dim: int, guidance_dim: int, hidden_dim: int | None = None) -> None:
        super().__init__()
        hidden_dim = hidden_dim or guidance_dim
        self.score = nn.Sequential(nn.Linear(clip_dim, hidden_dim), nn.GELU(),
                                   nn.Linear(hidden_dim, 1, bias=False))
        self.proj = nn.Linear(clip_dim, guidance_dim)

    def pooling_weights(self, visual: Tensor, assignment: Tensor) -> Tensor:
        """visual (B, C, h, w), assignment (K, h*w) -> weights (B, K, h*w): zero outside each region, sum 1 inside."""
        logits = self.score(visual.flatten(2).transpose(1, 2)).squeeze(-1)  # (B, h*w)
        inside = assignment.bool().unsqueeze(0)  # (1, K, h*w)
        # -inf outside the region gives weight exactly 0; every region is non-empty, so no row is all -inf.
        masked = logits.unsqueeze(1).masked_fill(~inside, float('-inf'))
        return torch.softmax(masked, dim=-1)

    def forward(self, visual: Tensor, assignment: Tensor) -> Tensor:
        """visual (B, C, h, w), assignment (K, h*w) -> g_image (B, K, D)."""
        weights = self.pooling_weights(visual, assignment)
        pooled = torch.einsum('bkl,bcl->bkc', weights, visual.flatten(2))
        return self.proj(pooled)


class GuidanceIntegration(nn.Module):
    """Region-aware guidance integration, eq 7.

    g_text_k = W_g(sum_n softmax_n(beta A_kn) g_region[n]); alpha_k = exp|g_img| / (exp|g_img| + exp|g_text|);
    G^(k) = alpha_k g_img + (1 - alpha_k) g_text, copied to every pixel of region k.
    """

    def __init__(self, guidance_dim: int, beta: float = 100.0) -> None:
        super().__init__()
        self.beta = beta
        self.text_proj = nn.Linear(guidance_dim, guidance_dim)  # W_g

    def forward(self, g_image: Tensor, g_region: Tensor, similarity: Tensor, assignment: Tensor,
                size: tuple[int, int]) -> Tensor:
        """g_image (B, K, D), g_region (B, N, D), A (B, K, N), assignment (K, h*w), size (h, w) -> G (B, D, h, w)."""
        h, w = size
        if assignment.shape[1] != h * w:
            raise ValueError(f'assignment covers {assignment.shape[1]} pixels, size {h}x{w} has {h * w}')
        class_weights = torch.softmax(self.beta * similarity, dim=-1)  # (B, K, N), over classes
        g_text = self.text_proj(torch.bmm(class_weights, g_region))  # (B, K, D)
        # The two-way softmax of the norms equals sigmoid of their difference, which cannot overflow.
        alpha = torch.sigmoid(g_image.norm(dim=-1, keepdim=True) - g_text.norm(dim=-1, keepdim=True))
        per_region = alpha * g_image + (1 - alpha) * g_text  # (B, K, D)
        # Gather (not a matmul with the 0/1 matrix) so each pixel gets its region's vector bit-exactly.
        pixel_region = assignment.argmax(dim=0)  # (h*w,)
        guidance = per_region[:, pixel_region]  # (B, h*w, D)
        return guidance.transpose(1, 2).reshape(g_image.shape[0], -1, h, w)


class PriorGuidedRegionAlignment(nn.Module):
    """Region part of section 2.2: region means -> text guidance, visual guidance -> integrated guidance G.

    The object prior stays outside (the head runs :class:`ObjectPrior` first and passes T_hat) because the
    prior is used elsewhere too.
    """

    def __init__(self, clip_dim: int, guidance_dim: int, region_grid: int = 6, tau: float = 100.0,
                 beta: float = 100.0) -> None:
        super().__init__()
        self.region_grid = region_grid
        self.text_guidance = RegionTextGuidance(clip_dim, guidance_dim, tau)
        self.visual_guidance = RegionVisualGuidance(clip_dim, guidance_dim)
        self.integration = GuidanceIntegration(guidance_dim, beta)

    def forward(self, visual: Tensor, t_hat: Tensor) -> tuple[Tensor, Tensor]:
        """visual V (B, C, h, w), t_hat (B, N, C) -> (G (B, D, h, w), A (B, K, N))."""
        h, w = visual.shape[-2:]
        # a map with fewer than r rows or columns (a small image at inference) gets the largest grid it can
        # partition: min(r, h, w) x min(r, h, w) regions
        grid = min(self.region_grid, h, w)
        assignment = region_assignment(h, w, grid, device=visual.device, dtype=visual.dtype)
        similarity, g_region = self.text_guidance(region_means(visual, assignment), t_hat)
        g_image = self.visual_guidance(visual, assignment)
        guidance = self.integration(g_image, g_region, similarity, assignment, (h, w))
        return guidance, similarity

    def extra_repr(self) -> str:
        return f'region_grid={self.region_grid}'
