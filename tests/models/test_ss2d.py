"""SS2D: scan orders, the direction wiring of the selective scan, global receptive field, gradients, learning."""
import pytest
import torch
import torch.nn.functional as F

from logoseg.models import selective_scan as ss
from logoseg.models.selective_scan import selective_scan_torch
from logoseg.models.ss2d import SS2D, cross_merge, cross_scan
from logoseg.utils.errors import LoGoSegUserError


def test_cross_scan_orders_on_2x3_map():
    x = torch.arange(6.).view(1, 1, 2, 3)  # [[0, 1, 2], [3, 4, 5]]
    seqs = cross_scan(x)
    assert seqs.shape == (1, 4, 1, 6)
    expected = [[0, 1, 2, 3, 4, 5],  # row-major
                [0, 3, 1, 4, 2, 5],  # column-major
                [5, 4, 3, 2, 1, 0],  # row-major reversed
                [5, 2, 4, 1, 3, 0]]  # column-major reversed
    assert seqs[0, :, 0].tolist() == expected


@pytest.mark.parametrize('height,width', [(2, 3), (3, 5), (5, 3), (1, 7), (4, 4)])
def test_cross_merge_undoes_cross_scan(height, width):
    x = torch.randn(2, 3, height, width)
    torch.testing.assert_close(cross_merge(cross_scan(x), height, width), 4 * x.flatten(2))
    # Merge is the transpose of scan (a sum of inverse permutations): <scan(x), y> = <x, merge(y)> for any y.
    y = torch.randn(2, 4, 3, height * width)
    torch.testing.assert_close((cross_scan(x) * y).sum(), (x.flatten(2) * cross_merge(y, height, width)).sum())


def test_cross_merge_checks_shape():
    with pytest.raises(ValueError, match='scan outputs'):
        cross_merge(torch.zeros(1, 4, 2, 6), 2, 4)


def test_construction_and_initialisation():
    m = SS2D(40, d_state=5, expand=1.5)
    d_inner = 60
    assert m.dt_rank == 3  # ceil(40 / 16)
    assert m.x_proj_weight.shape == (4, 3 + 2 * 5, d_inner)
    assert m.dt_proj_weight.shape == (4, d_inner, 3)
    dt = F.softplus(m.dt_proj_bias)
    assert dt.shape == (4, d_inner) and dt.min() >= 1e-3 * 0.999 and dt.max() <= 1e-1 * 1.001
    torch.testing.assert_close(-torch.exp(m.A_log), -torch.arange(1., 6.).expand(4 * d_inner, 5))
    assert torch.equal(m.D, torch.ones(4 * d_inner))
    assert SS2D(8, dt_rank=2).dt_rank == 2
    with pytest.raises(ValueError, match='dt_rank'):
        SS2D(8, dt_rank='big')
    with pytest.raises(ValueError, match='odd'):
        SS2D(8, d_conv=4)
    with pytest.raises(ValueError, match='backend'):
        SS2D(8, scan_backend='triton')


def test_shape_non_square():
    m = SS2D(8, d_state=4)
    x = torch.randn(2, 8, 5, 7)
    assert m(x).shape == (2, 8, 5, 7)


def test_directions_use_their_own_parameters():
    """The G = 4 scan equals four separate single-direction scans, each with its own x_proj / dt_proj / A / D."""
    torch.manual_seed(0)
    m = SS2D(6, d_state=3, expand=1.0, dt_rank=2)
    with torch.no_grad():  # make the directions differ in every parameter
        m.A_log.add_(0.3 * torch.randn_like(m.A_log))
        m.D.add_(torch.randn_like(m.D))
    x = torch.randn(2, 6, 3, 4)
    height, width, d = 3, 4, m.d_inner
    row_major = torch.arange(height * width)
    col_major = row_major.view(height, width).t().flatten()
    orders = [row_major, col_major, row_major.flip(0), col_major.flip(0)]  # pixel index at each scan step
    expected = torch.zeros(2, d, height * width)
    for k, order in enumerate(orders):
        u = x.flatten(2)[:, :, order]  # (B, d, L) in direction k's order
        proj = torch.einsum('cd,bdl->bcl', m.x_proj_weight[k], u)
        dt, B, C = proj.split([2, 3, 3], dim=1)
        channels = slice(k * d, (k + 1) * d)
        y = selective_scan_torch(u, m.dt_proj_weight[k] @ dt, -torch.exp(m.A_log[channels]), B[:, None],
                                 C[:, None], m.D[channels], m.dt_proj_bias[k], delta_softplus=True)
        expected[:, :, order] += y  # back to pixel positions
    torch.testing.assert_close(m._global_scan(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('source,target', [((0, 0), (-1, -1)), ((-1, -1), (0, 0)), ((0, -1), (-1, 0))])
def test_global_receptive_field(source, target):
    torch.manual_seed(0)
    m = SS2D(4, d_state=4)
    x = torch.randn(1, 4, 7, 9)
    x2 = x.clone()
    x2[:, :, source[0], source[1]] += 1.0
    with torch.no_grad():
        delta = (m(x2) - m(x))[0, :, target[0], target[1]]
    assert delta.abs().max() > 1e-6  # a 3x3 convolution would leave a pixel 6+ rows away unchanged
    # Stronger: one output pixel depends on every input pixel.
    x.requires_grad_()
    m(x)[0, :, target[0], target[1]].sum().backward()
    assert (x.grad.abs().sum(1) > 0).all()


def test_backend_auto_and_torch_agree_on_cpu(monkeypatch):
    def kernel(*args, **kwargs):
        raise AssertionError('the CUDA kernel must not run on CPU tensors')

    monkeypatch.setattr(ss, '_load_cuda_kernel', lambda: (kernel, ''))
    torch.manual_seed(0)
    m = SS2D(4, d_state=4, scan_backend='auto')
    x = torch.randn(2, 4, 3, 5)
    y_auto = m(x)
    m.scan_backend = 'torch'
    torch.testing.assert_close(m(x), y_auto, atol=0, rtol=0)
    m.scan_backend = 'cuda'
    with pytest.raises(LoGoSegUserError, match='CUDA tensors'):
        m(x)


def test_gradient_reaches_every_parameter():
    torch.manual_seed(0)
    m = SS2D(4, d_state=4)
    m(torch.randn(2, 4, 3, 4)).square().sum().backward()
    names = {name for name, _ in m.named_parameters()}
    assert {'A_log', 'D', 'dt_proj_weight', 'dt_proj_bias', 'x_proj_weight', 'in_proj.weight',
            'out_proj.weight', 'conv.weight', 'norm.weight'} <= names
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_learns_a_global_target():
    """Predict each channel's image mean at every pixel of a 6 x 6 map, on fresh random images every step.

    Knowing only a 3 x 3 neighbourhood explains at most 9/36 of the variance of the mean of 36 i.i.d. pixels,
    so ending below half the target variance needs context from the whole map. The last input channel is
    constant (as real features have non-zero means): it gives the scan a constant input to accumulate against.
    """
    torch.manual_seed(0)
    dim = 4
    m = SS2D(dim, d_state=4)
    opt = torch.optim.Adam(m.parameters(), lr=2e-2)
    gen = torch.Generator().manual_seed(1)

    def sample(n):
        x = torch.randn(n, dim, 6, 6, generator=gen)
        x[:, -1] = 1.0
        target = 6 * x.mean((2, 3), keepdim=True).expand_as(x).clone()  # 6 = sqrt(36): unit variance
        target[:, -1] = 0.0
        return x, target

    x_test, t_test = sample(256)
    with torch.no_grad():
        initial = F.mse_loss(m(x_test), t_test).item()
    for _ in range(120):
        x, target = sample(32)
        loss = F.mse_loss(m(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = F.mse_loss(m(x_test), t_test).item()
    assert final < 0.5 * initial
    assert final < 0.5 * t_test.square().mean().item()
