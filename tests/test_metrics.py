"""Metrics: each checked against an independent computation of the thesis' definition."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import uniform_filter
from skimage import data

from inpaintstudio.training import backbones, metrics


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    """A real photo (float [0,1], 96×96 crop of chelsea) and a noisy, partly changed copy."""
    gt = data.chelsea()[100:196, 150:246].astype(np.float32) / 255.0
    rng = np.random.default_rng(0)
    pred = np.clip(gt + rng.normal(0, 0.05, gt.shape).astype(np.float32), 0, 1)
    pred[20:50, 30:70] = 0.5
    return pred, gt


def test_to_uint8_truncates_not_rounds() -> None:
    x = np.array([[[0.999, 1.5, -0.2]]], dtype=np.float32)
    assert metrics.to_uint8(x).tolist() == [[[254, 255, 0]]]  # 254.745 -> 254, clamped ends


def test_psnr_is_10log10_of_255_squared_over_mse(pair) -> None:
    pred, gt = pair
    a, b = metrics.to_uint8(pred).astype(np.float64), metrics.to_uint8(gt).astype(np.float64)
    expected = 10 * np.log10(255.0**2 / np.mean((a - b) ** 2))
    assert metrics.psnr(pred, gt) == pytest.approx(expected, abs=1e-9)
    assert metrics.psnr(gt, gt) == metrics.PSNR_CAP


def _ssim_by_hand(x: np.ndarray, y: np.ndarray) -> float:
    """The thesis' test code: 7×7 uniform window, K1 .01, K2 .03, sample covariance, mean over valid windows, per
    channel, then the mean over channels."""
    c1, c2, win = (0.01 * 255) ** 2, (0.03 * 255) ** 2, 7
    n = win * win
    values = []
    for c in range(3):
        a, b = x[..., c].astype(np.float64), y[..., c].astype(np.float64)
        mu_a, mu_b = uniform_filter(a, win), uniform_filter(b, win)
        va = (uniform_filter(a * a, win) - mu_a**2) * n / (n - 1)
        vb = (uniform_filter(b * b, win) - mu_b**2) * n / (n - 1)
        cov = (uniform_filter(a * b, win) - mu_a * mu_b) * n / (n - 1)
        s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (va + vb + c2))
        pad = win // 2
        values.append(s[pad:-pad, pad:-pad].mean())
    return float(np.mean(values))


def test_ssim_matches_the_spec_definition(pair) -> None:
    pred, gt = pair
    expected = _ssim_by_hand(metrics.to_uint8(pred), metrics.to_uint8(gt))
    assert metrics.ssim(pred, gt) == pytest.approx(expected, abs=1e-6)
    assert metrics.ssim(gt, gt) == pytest.approx(1.0)


def test_l1_percent_is_mean_abs_times_100_without_quantisation(pair) -> None:
    pred, gt = pair
    assert metrics.l1_percent(pred, gt) == pytest.approx(100 * np.abs(pred - gt).mean(), rel=1e-6)
    tensor = torch.from_numpy(pred).permute(2, 0, 1)[None]
    assert metrics.l1_percent(tensor, gt) == pytest.approx(metrics.l1_percent(pred, gt))


def test_composite_keeps_known_pixels(pair) -> None:
    pred, gt = pair
    hole = np.zeros(gt.shape[:2] + (1,), np.float32)
    hole[10:20, 10:20] = 1
    comp = metrics.composite(pred, gt, hole)
    assert np.array_equal(comp[hole[..., 0] == 0], gt[hole[..., 0] == 0])
    assert np.array_equal(comp[hole[..., 0] == 1], pred[hole[..., 0] == 1])


def test_frechet_distance_closed_form() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 4))
    s1, s2 = a @ a.T + np.eye(4), np.diag([1.0, 2.0, 3.0, 4.0])
    mu1, mu2 = np.array([0.0, 1, 2, 3]), np.array([1.0, 1, 1, 1])
    # Tr((S1 S2)^1/2) = Tr((S2^1/2 S1 S2^1/2)^1/2), the symmetric form, by eigenvalues
    half = np.diag(np.sqrt(np.diag(s2)))
    eig = np.linalg.eigvalsh(half @ s1 @ half)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(eig))
    assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    assert metrics.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-7)


def test_lpips_equals_torchmetrics_with_the_same_backbone(monkeypatch) -> None:
    """Our LPIPS and torchmetrics' _LPIPS, given one (random) VGG-16 and the shipped heads, agree."""
    import torchmetrics.functional.image.lpips as lp
    torch.manual_seed(0)
    vgg = backbones.VGGFeatures(16)
    for p in vgg.parameters():
        p.data.normal_(0, 0.05)
    heads = torch.load(metrics.lpips_heads_file(), map_location="cpu", weights_only=True)
    ours = metrics.LPIPS(vgg, heads)

    monkeypatch.setattr(lp, "_TORCHVISION_AVAILABLE", True)
    monkeypatch.setattr(lp, "_get_tv_model_features", lambda net, pretrained=False: vgg.features)
    monkeypatch.setattr(torch, "load", lambda *a, **k: heads)  # the heads file needs map_location on CPU
    reference = lp._LPIPS(pretrained=True, net="vgg", pnet_rand=True)
    monkeypatch.undo()

    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = (x + 0.2 * torch.randn_like(x)).clamp(-1, 1)
    with torch.no_grad():
        expected = reference(x, y).flatten()
        got = ours(x, y)
    assert torch.allclose(got, expected, atol=1e-6, rtol=1e-5)
    assert float(ours(x, x).abs().max()) < 1e-6


def test_vgg_and_inception_load_torchvision_key_names(tmp_path, monkeypatch) -> None:
    """A file written under torchvision's names loads strictly; without it the message names file and folder."""
    vgg = backbones.VGGFeatures(19)
    state = {f"features.{k}": v for k, v in vgg.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(1)  # dropped: only features.* are used
    torch.save(state, tmp_path / backbones.VGG19_FILE)
    monkeypatch.setenv("INPAINTSTUDIO_BACKBONES", str(tmp_path))
    loaded = backbones.vgg_from_file(19)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), vgg.state_dict().values()))
    assert sorted(state)[:2] == ["classifier.0.weight", "features.0.bias"]

    with torch.device("meta"):
        inception = backbones.FIDInceptionV3()
    keys = set(inception.state_dict())
    assert {"Conv2d_1a_3x3.conv.weight", "Mixed_7c.branch3x3dbl_3b.bn.running_var", "fc.weight"} <= keys
    assert inception.fc.weight.shape == (1008, 2048)
    with pytest.raises(backbones.BackboneMissingError, match=r"pt_inception-2015-12-05-6726825d\.pth") as info:
        backbones.inception_from_file()
    assert str(tmp_path) in str(info.value)


def test_fid_inception_gives_pool3_features() -> None:
    with torch.device("meta"):  # shapes only: a real 299² forward is slow on a shared CPU
        net = backbones.FIDInceptionV3()
        feats = net(torch.empty(2, 3, 256, 256))
    assert feats.shape == (2, 2048)
