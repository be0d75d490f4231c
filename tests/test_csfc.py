"""CSFC: property tests from the paper's equations and the inferred design (docs/models/csfc.md); no parity fixture."""

from __future__ import annotations

import dataclasses
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from inpaintstudio import registry
from inpaintstudio.core import loading
from inpaintstudio.models.csfc import network as csfc
from inpaintstudio.models.layers.partial_conv import PartialConv2d
from inpaintstudio.training.backbones import VGGFeatures
from inpaintstudio.training.trainer import TrainConfig, Trainer, load_config_file
from inpaintstudio.weights import save_safetensors

REPO = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------------------------------------
# Partial convolution
# --------------------------------------------------------------------------------------------------------

HAND_MASK = torch.tensor([[1.0, 0, 0], [0, 0, 0], [0, 0, 1]])
HAND_INPUT = torch.tensor([[2.0, 0, 0], [0, 0, 0], [0, 0, 4]])  # zero in holes, as PSR/CSFC feed it


def _box_pconv(cin: int, k: int = 3, stride: int = 1, **kwargs) -> PartialConv2d:
    layer = PartialConv2d(cin, 1, k, stride, **kwargs)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    return layer


def test_partial_conv_hand_example_renormalised() -> None:
    # Window sums of x: [[2,2,0],[2,6,4],[0,4,4]]; valid counts: [[1,1,0],[1,2,1],[0,1,1]];
    # y = sum · 9 / count, zero where count = 0; new mask = 1 where count > 0.
    y, new_mask = _box_pconv(1)(HAND_INPUT[None, None], HAND_MASK[None, None])
    assert torch.allclose(y[0, 0], torch.tensor([[18.0, 18, 0], [18, 27, 36], [0, 36, 36]]), atol=1e-5)
    assert torch.equal(new_mask[0, 0], torch.tensor([[1.0, 1, 0], [1, 1, 1], [0, 1, 1]]))


def test_partial_conv_hand_example_without_renormalisation() -> None:
    y, new_mask = _box_pconv(1, renormalize=False)(HAND_INPUT[None, None], HAND_MASK[None, None])
    assert torch.allclose(y[0, 0], torch.tensor([[2.0, 2, 0], [2, 6, 4], [0, 4, 4]]), atol=1e-6)
    assert torch.equal(new_mask[0, 0], torch.tensor([[1.0, 1, 0], [1, 1, 1], [0, 1, 1]]))


def test_partial_conv_window_counts_every_input_channel() -> None:
    # Second channel: all hole and zero. Window size is k²·cin = 18, so every ratio doubles.
    x = torch.stack([HAND_INPUT, torch.zeros(3, 3)])[None]
    mask = torch.stack([HAND_MASK, torch.zeros(3, 3)])[None]
    y, new_mask = _box_pconv(2)(x, mask)
    assert torch.allclose(y[0, 0], torch.tensor([[36.0, 36, 0], [36, 54, 72], [0, 72, 72]]), atol=1e-5)
    assert new_mask.shape == (1, 1, 3, 3)


def test_partial_conv_single_channel_mask_is_replicated_and_output_mask_has_cout_channels() -> None:
    torch.manual_seed(0)
    layer = PartialConv2d(4, 6, 5, stride=2)
    mask = (torch.rand(2, 1, 12, 10) > 0.5).float()
    x = torch.randn(2, 4, 12, 10) * mask
    y1, m1 = layer(x, mask)
    y4, m4 = layer(x, mask.expand(-1, 4, -1, -1).contiguous())
    assert torch.allclose(y1, y4, atol=1e-5) and torch.equal(m1, m4)
    assert y1.shape == (2, 6, 6, 5) and m1.shape == (2, 6, 6, 5)
    assert torch.equal(m1[:, 0], m1[:, 5])


def test_partial_conv_renormalisation_gives_mean_of_valid_inputs() -> None:
    # With a mean filter W = 1/(k²·cin), renormalised output = mean over the VALID inputs of the window,
    # so a constant c on the known region is reproduced exactly wherever any input is valid.
    torch.manual_seed(1)
    cin, k, c = 3, 5, 0.7
    layer = PartialConv2d(cin, 2, k, stride=2)
    with torch.no_grad():
        layer.weight.fill_(1.0 / (k * k * cin))
    mask = (torch.rand(1, cin, 16, 16) > 0.6).float()
    mask[:, :, 4:14, 2:12] = 0  # a hole wide enough to contain windows without any valid input
    y, new_mask = layer(c * mask, mask)
    valid = new_mask > 0
    assert valid.any() and (~valid).any()
    assert torch.allclose(y[valid], torch.full_like(y[valid], c), atol=1e-5)
    assert torch.equal(y[~valid], torch.zeros_like(y[~valid]))


def test_partial_conv_fully_masked_windows_output_zero_even_with_hole_content() -> None:
    x = HAND_INPUT.clone()
    x[0, 2] = x[2, 0] = 100.0  # garbage in holes; the windows at (0,2) and (2,0) hold no valid input
    layer = _box_pconv(1)
    with torch.no_grad():
        y, new_mask = layer(x[None, None], HAND_MASK[None, None])
    assert float(y[0, 0, 0, 2]) == 0.0 and float(y[0, 0, 2, 0]) == 0.0
    assert float(new_mask[0, 0, 0, 2]) == 0.0


def test_partial_conv_liu_form_ignores_hole_content() -> None:
    torch.manual_seed(2)
    layer = PartialConv2d(2, 3, 3, bias=True, multiply_input=True)
    mask = (torch.rand(1, 2, 8, 8) > 0.4).float()
    x = torch.randn(1, 2, 8, 8)
    y_a, _ = layer(x, mask)
    y_b, _ = layer(x + 50.0 * (1 - mask) * torch.randn_like(x), mask)
    assert torch.equal(y_a, y_b)


# --------------------------------------------------------------------------------------------------------
# CCSA pieces
# --------------------------------------------------------------------------------------------------------


def _brute_patch(features: torch.Tensor, y: int, x: int) -> torch.Tensor:
    padded = torch.nn.functional.pad(features, (1, 1, 1, 1))
    return padded[:, y : y + 3, x : x + 3].reshape(-1)


def test_patch_similarity_matches_loops() -> None:
    torch.manual_seed(3)
    h, w = 3, 4
    f = torch.randn(1, 2, h, w)
    sim = csfc.patch_similarity(f, "both")
    positions = [(y, x) for y in range(h) for x in range(w)]
    brute = torch.zeros(h * w, h * w)
    for p, (py, px) in enumerate(positions):
        for q, (qy, qx) in enumerate(positions):
            a, b = _brute_patch(f[0], py, px), _brute_patch(f[0], qy, qx)
            brute[p, q] = (a @ b) / (a.norm() * b.norm())
    assert torch.allclose(sim[0], brute, atol=1e-5)
    assert torch.allclose(torch.diagonal(sim[0]), torch.ones(h * w), atol=1e-5)


# Scores s(p, q) = 10·p + q on a 2×3 grid (p, q = 0…5 in raster order). The 3×3 window of a query holds
# {0, 1, 3, 4} for p = 0, 3; all six positions for p = 1, 4; {1, 2, 4, 5} for p = 2, 5. Eq. 4 (query moves,
# candidate fixed): s'(p, q) = (10·Σ_window p' + |window|·q)/9.
HAND_SCORES = (10 * torch.arange(6.0)[:, None] + torch.arange(6.0)[None, :])[None]
HAND_SMOOTHED = torch.stack([(80 + 4 * torch.arange(6.0)) / 9, (150 + 6 * torch.arange(6.0)) / 9,
                             (120 + 4 * torch.arange(6.0)) / 9] * 2)


def test_smoothing_averages_over_the_query_neighbourhood_only() -> None:
    smoothed = csfc.smooth_scores(HAND_SCORES, 2, 3, 3, "mean")[0]
    assert torch.allclose(smoothed, HAND_SMOOTHED, atol=1e-5)
    assert abs(float(smoothed[0, 5]) - 100 / 9) < 1e-5 and abs(float(smoothed[4, 5]) - 20.0) < 1e-5
    assert torch.allclose(csfc.smooth_scores(HAND_SCORES, 2, 3, 3, "sum")[0], 9 * HAND_SMOOTHED, atol=1e-4)
    # The both-positions switch: s(p+δ, q+δ); for p = (0,0), q = (1,2) only δ = 0 keeps both inside → 5/9.
    diagonal = csfc.smooth_scores(HAND_SCORES, 2, 3, 3, "diagonal")[0]
    assert abs(float(diagonal[0, 5]) - 5 / 9) < 1e-6
    assert abs(float(diagonal[4, 1]) - (30 + 41 + 52) / 9) < 1e-5  # p = (1,1), q = (0,1): δ = (0, −1), (0, 0), (0, 1)
    with pytest.raises(ValueError, match="smooth mode"):
        csfc.smooth_scores(HAND_SCORES, 2, 3, 3, "max")


def test_smoothing_modes_match_loops() -> None:
    torch.manual_seed(30)
    h, w = 3, 4
    scores = torch.randn(2, h * w, h * w)
    grid = scores.reshape(2, h, w, h, w)
    query_only, both = torch.zeros_like(grid), torch.zeros_like(grid)
    inside = lambda y, x: 0 <= y < h and 0 <= x < w  # noqa: E731
    for py, px, qy, qx in np.ndindex(h, w, h, w):
        for dy, dx in np.ndindex(3, 3):
            dy, dx = dy - 1, dx - 1
            if inside(py + dy, px + dx):
                query_only[:, py, px, qy, qx] += grid[:, py + dy, px + dx, qy, qx] / 9
                if inside(qy + dy, qx + dx):
                    both[:, py, px, qy, qx] += grid[:, py + dy, px + dx, qy + dy, qx + dx] / 9
    assert torch.allclose(csfc.smooth_scores(scores, h, w), query_only.reshape(2, h * w, h * w), atol=1e-5)
    assert torch.allclose(csfc.smooth_scores(scores, h, w, 3, "diagonal"), both.reshape(2, h * w, h * w), atol=1e-5)


def test_candidate_only_normalisation_scales_rows_by_query_norm() -> None:
    torch.manual_seed(4)
    f = torch.randn(1, 3, 4, 4)
    norms = torch.nn.functional.unfold(f, 3, padding=1).norm(dim=1)  # 1×N query patch norms
    both, candidate = csfc.patch_similarity(f, "both"), csfc.patch_similarity(f, "candidate")
    assert torch.allclose(candidate, both * norms[:, :, None], atol=1e-4)


def _ccsa(**overrides) -> csfc.CrossScaleCoherentAttention:
    return csfc.CrossScaleCoherentAttention(csfc.Config(**overrides), channels=16, with_blend=True)


def test_scores_are_row_stochastic() -> None:
    torch.manual_seed(5)
    scores = _ccsa().scores(torch.relu(torch.randn(2, 16, 5, 6)))
    assert scores.shape == (2, 30, 30) and bool((scores >= 0).all())
    assert torch.allclose(scores.sum(dim=-1), torch.ones(2, 30), atol=1e-5)


def test_lambda_blend_is_clamped_convex_combination() -> None:
    module = _ccsa()
    a, b = torch.softmax(torch.randn(1, 4, 4), -1), torch.softmax(torch.randn(1, 4, 4), -1)
    previous = csfc.LinkState(features=torch.zeros(1, 16, 2, 2), mask=torch.ones(1, 1, 2, 2), attention=b)
    assert torch.allclose(module.blend(a, previous), 0.5 * a + 0.5 * b)  # λ initialised to 0.5
    with torch.no_grad():
        module.blend_weight.fill_(1.7)  # clamped to 1
    assert torch.allclose(module.blend(a, previous), a)
    assert torch.equal(module.blend(a, None), a)


def test_validity_blend_uses_fully_valid_candidates() -> None:
    module = _ccsa(blend="validity")
    mask = torch.ones(1, 1, 3, 3)
    mask[0, 0, 0, 0] = 0
    valid = csfc.fully_valid_patches(mask)
    # With zero padding counted as hole only the centre patch is fully valid, and it contains (0,0) → none.
    assert torch.equal(valid, torch.zeros(1, 9))
    valid_full = csfc.fully_valid_patches(torch.ones(1, 1, 3, 3))
    assert torch.equal(valid_full[0], torch.tensor([0.0, 0, 0, 0, 1, 0, 0, 0, 0]))
    a, b = torch.full((1, 9, 9), 0.2), torch.full((1, 9, 9), 0.6)
    previous = csfc.LinkState(features=torch.zeros(1, 16, 3, 3), mask=torch.ones(1, 1, 3, 3), attention=b)
    blended = module.blend(a, previous)  # r = 1: centre column (0.6 + 0.2)/2, others keep a
    assert torch.allclose(blended[0, :, 4], torch.full((9,), 0.4), atol=1e-6)
    assert torch.allclose(blended[0, :, 0], torch.full((9,), 0.2), atol=1e-6)


def _cyclic_shift(n: int, step: int = 1) -> torch.Tensor:
    """1×n×n attention whose row p takes candidate q = (p + step) mod n (not symmetric: its transpose undoes it)."""
    return torch.eye(n)[(torch.arange(n) + step) % n][None]


def test_reconstruction_forms() -> None:
    torch.manual_seed(6)
    f = torch.randn(1, 2, 3, 3)
    eye = torch.eye(9)[None]
    assert torch.allclose(csfc.reconstruct_pixels(f, eye), f)
    shift = _cyclic_shift(9)
    assert not torch.equal(shift, shift.transpose(1, 2))
    # p takes q = p + 1: the raster sequence moves one step towards the start, wrapping around.
    assert torch.allclose(csfc.reconstruct_pixels(f, shift), f.flatten(2).roll(-1, dims=2).view_as(f))
    # Patch paste with the identity: each pixel summed once per window covering it (9 centre, 4 corners).
    pasted = csfc.reconstruct_patches(f, eye)
    coverage = torch.tensor([[4.0, 6, 4], [6, 9, 6], [4, 6, 4]])
    assert torch.allclose(pasted, f * coverage, atol=1e-5)
    # Patch paste with the shift: the 3×3 patch of f around q = p + 1 is pasted centred on p.
    padded = torch.nn.functional.pad(f, (1, 1, 1, 1))
    expected = torch.zeros(1, 2, 5, 5)
    for p in range(9):
        q = (p + 1) % 9
        expected[:, :, p // 3 : p // 3 + 3, p % 3 : p % 3 + 3] += padded[:, :, q // 3 : q // 3 + 3, q % 3 : q % 3 + 3]
    assert torch.allclose(csfc.reconstruct_patches(f, shift), expected[:, :, 1:4, 1:4], atol=1e-5)


def _brute_scores(high: torch.Tensor, scale: float = 10.0) -> torch.Tensor:
    """Eqs. 3–4 and the softmax by loops: cosine of 3×3 patches, mean over the query's 3×3 window, softmax."""
    _, h, w = high.shape
    positions = [(y, x) for y in range(h) for x in range(w)]
    patches = [_brute_patch(high, y, x) for y, x in positions]
    sim = torch.tensor([[float(a @ b / (a.norm() * b.norm())) for b in patches] for a in patches])
    smoothed = torch.zeros_like(sim)
    for p, (py, px) in enumerate(positions):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if 0 <= py + dy < h and 0 <= px + dx < w:
                    smoothed[p] += sim[(py + dy) * w + px + dx] / 9
    return torch.softmax(scale * smoothed, dim=1)


def _two_blocks(seed: int, channels: int = 6, h: int = 3, w: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    high = torch.relu(torch.randn(1, channels, h, w, generator=generator))  # BB_j's level-2 feature
    low = torch.randn(1, channels, h, w, generator=generator)  # BB_{j−1}'s, different content
    return high, low


def test_transfer_follows_a_known_shift_onto_the_lower_block() -> None:
    # With λ clamped to 0 the link's attention is exactly the previous link's, here a cyclic shift; the rebuilt
    # feature must be the LOWER block's feature moved by that shift (p takes q = p + 1), whatever BB_j holds.
    module = csfc.CrossScaleCoherentAttention(csfc.Config(), channels=6, with_blend=True)
    with torch.no_grad():
        module.blend_weight.fill_(-1.0)
    high, low = _two_blocks(40)
    shift = _cyclic_shift(12)
    previous = csfc.LinkState(features=low, mask=torch.ones(1, 1, 3, 4), attention=shift)
    known = torch.ones(1, 1, 3, 4)
    rebuilt, attention = module.transfer(high, low, known, previous)
    assert torch.equal(attention, shift)
    assert torch.allclose(rebuilt, low.flatten(2).roll(-1, dims=2).view_as(low), atol=1e-6)
    moved = low.flatten(2).roll(3, dims=2).view_as(low)  # move BB_{j−1}'s content: the output moves with it
    rebuilt_moved, _ = module.transfer(torch.relu(torch.randn(1, 6, 3, 4)), moved, known, previous)
    assert torch.allclose(rebuilt_moved, moved.flatten(2).roll(-1, dims=2).view_as(low), atol=1e-6)


def test_scores_come_from_the_higher_block_and_rebuild_the_lower_one() -> None:
    module = csfc.CrossScaleCoherentAttention(csfc.Config(), channels=6, with_blend=False)
    high, low = _two_blocks(41)
    expected = _brute_scores(high[0])
    assert float((expected - expected.T).abs().max()) > 0.05  # not symmetric, so a transpose cannot pass
    known = torch.ones(1, 1, 3, 4)
    known[0, 0, 1, 1:3] = 0  # two positions of the input hole, regenerated by Eqs. 1–2
    rebuilt, attention = module.transfer(high, low, known)
    assert torch.allclose(attention[0], expected, atol=1e-5)
    transferred = (low.flatten(2)[0] @ expected.T).view_as(low)  # Eq. 6: out(p) = Σ_q A(p, q)·low(q)
    assert torch.allclose(rebuilt, csfc.coherent_semantic_refinement(transferred, known), atol=1e-5)
    assert not torch.allclose(rebuilt, transferred, atol=1e-3)  # the refinement acted on the two hole positions
    assert torch.allclose(rebuilt[..., known[0, 0] > 0], transferred[..., known[0, 0] > 0], atol=1e-5)
    # Other lower-block content: same scores, rebuilt from it. Other higher-block content: other scores.
    other_low = torch.randn(1, 6, 3, 4)
    rebuilt_other, attention_other = module.transfer(high, other_low, torch.ones(1, 1, 3, 4))
    assert torch.equal(attention_other, attention)
    assert torch.allclose(rebuilt_other, (other_low.flatten(2)[0] @ expected.T).view_as(low), atol=1e-5)
    _, attention_new_high = module.transfer(torch.relu(torch.randn(1, 6, 3, 4)), low, known)
    assert not torch.allclose(attention_new_high, attention, atol=1e-3)


# --------------------------------------------------------------------------------------------------------
# SCA (coherent semantic refinement)
# --------------------------------------------------------------------------------------------------------

SCA_FEATURES = torch.tensor([[1.0, 0.0, 1.0, 0.1, 1.0], [0.0, 1.0, 0.1, 1.0, 0.2]])[None, :, None, :]  # 1×2×1×5
SCA_KNOWN = torch.tensor([1.0, 1, 0, 0, 0]).view(1, 1, 1, 5)


def test_sca_sequential_hand_example() -> None:
    out = csfc.coherent_semantic_refinement(SCA_FEATURES, SCA_KNOWN, "sequential")[0, :, 0]
    assert torch.equal(out[:, :2], SCA_FEATURES[0, :, 0, :2])  # known positions untouched
    assert torch.allclose(out[:, 2], torch.tensor([1.0, 0.0]))  # first hole = its best known match k1
    # second hole: match k2, Dmax = 1/√1.01, Dad = cos((0.1,1),(1,0)) = 0.1/√1.01 → weights 1/11, 10/11
    assert torch.allclose(out[:, 3], torch.tensor([1 / 11, 10 / 11]), atol=1e-6)
    # third hole (1, 0.2): match k1, Dmax = 1/√1.04, Dad = cos((1,0.2), generated (1/11,10/11))
    d_max = 1 / math.sqrt(1.04)
    d_ad = (1 / 11 + 0.2 * 10 / 11) / (math.sqrt(1.04) * math.hypot(1 / 11, 10 / 11))
    expected = [(d_ad / 11 + d_max) / (d_ad + d_max), (d_ad * 10 / 11) / (d_ad + d_max)]
    assert torch.allclose(out[:, 4], torch.tensor(expected), atol=1e-6)
    assert abs(expected[0] - 0.79101) < 1e-4  # the number itself, for the record


def test_sca_parallel_hand_example() -> None:
    out = csfc.coherent_semantic_refinement(SCA_FEATURES, SCA_KNOWN, "parallel")[0, :, 0]
    assert torch.equal(out[:, :2], SCA_FEATURES[0, :, 0, :2])
    assert torch.allclose(out[:, 2], torch.tensor([1.0, 0.0]))
    assert torch.allclose(out[:, 3], torch.tensor([1 / 11, 10 / 11]), atol=1e-6)
    # third hole mixes with the predecessor's initial match k2: Dad/Dmax = 0.2 → (5/6, 1/6)
    assert torch.allclose(out[:, 4], torch.tensor([5 / 6, 1 / 6]), atol=1e-6)


def test_sca_without_known_positions_or_holes_is_identity() -> None:
    f = torch.randn(2, 3, 2, 2)
    assert torch.equal(csfc.coherent_semantic_refinement(f, torch.zeros(2, 1, 2, 2)), f)
    assert torch.equal(csfc.coherent_semantic_refinement(f, torch.ones(2, 1, 2, 2)), f)


def _centred_hole(size: int, ratio: float) -> tuple[torch.Tensor, int]:
    side = round(size * ratio**0.5)
    start = (size - side) // 2
    mask = torch.ones(1, 1, size, size)
    mask[..., start : start + side, start : start + side] = 0
    return mask, side


@pytest.mark.parametrize(("ratio", "cells"), [(0.25, 8), (0.5, 12)])
def test_refinement_region_is_the_input_hole_at_level_two(ratio: float, cells: int) -> None:
    # 25 %: a 64² hole at 32…95 covers the 8×8 cells 4…11 of the 16×16 grid; 50 %: 91² at 18…108, cells 2…13.
    mask, _ = _centred_hole(128, ratio)
    known = csfc.refinement_known(mask)
    assert known.shape == (1, 1, 16, 16)
    first = (128 - round(128 * ratio**0.5)) // 2 // 8
    expected = torch.ones(16, 16)
    expected[first : first + cells, first : first + cells] = 0
    assert torch.equal(known[0, 0], expected) and int((known == 0).sum()) == cells * cells
    assert torch.equal(csfc.refinement_known(mask.expand(-1, 3, -1, -1)), known)
    one_pixel = torch.ones(1, 1, 128, 128)
    one_pixel[..., 77, 9] = 0  # a single missing pixel marks its whole 8×8 cell (9, 1)
    assert torch.nonzero(csfc.refinement_known(one_pixel) == 0).tolist() == [[0, 0, 9, 1]]


# --------------------------------------------------------------------------------------------------------
# Whole network
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def net() -> csfc.CSFC:
    torch.manual_seed(0)
    return csfc.build().eval()


def _inputs(batch: int, height: int, width: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, height, width, generator=generator)
    mask = torch.ones(batch, 1, height, width)
    mask[:, :, height // 4 : height // 2 + 8, width // 4 : width // 2 + 12] = 0  # 1 = known
    return image, mask


def test_attention_maps_are_normalised_over_candidates(net: csfc.CSFC) -> None:
    image, mask = _inputs(2, 64, 64)
    with torch.no_grad():
        out, attention = net(image, mask, return_attention=True)
    n = (64 // 8) * (64 // 8)
    assert len(attention) == 3 and out.shape == (2, 3, 64, 64)
    for scores in attention:
        assert scores.shape == (2, n, n) and bool((scores >= 0).all())
        assert torch.allclose(scores.sum(dim=-1), torch.ones(2, n), atol=1e-5)


def test_coherent_refinement_acts_on_a_half_hole(net: csfc.CSFC) -> None:
    # 50 % centred hole at 128²: the refinement region is the input hole (144 of 256 level-2 cells), while the
    # linked blocks' own level-2 masks are already closed by the partial convolutions.
    mask, _ = _centred_hole(128, 0.5)
    image = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(11))
    without = csfc.build(dataclasses.replace(net.cfg, use_sca=False)).eval()
    without.load_state_dict(net.state_dict())
    level_two_holes: list[int] = []
    handle = net.unet.down[1].register_forward_hook(
        lambda _module, _inputs, output: level_two_holes.append(int((output[1][:, :1] < 0.5).sum()))
    )
    try:
        with torch.no_grad():
            refined = net(image, mask)
    finally:
        handle.remove()
    with torch.no_grad():
        plain = without(image, mask)
    assert level_two_holes[1:] == [0, 0, 0] and int((csfc.refinement_known(mask) == 0).sum()) == 144
    assert float((refined - plain).abs().max()) > 1e-3


def test_each_link_rebuilds_the_previous_blocks_level_two_feature(net: csfc.CSFC) -> None:
    image, mask = _inputs(1, 64, 64, seed=12)
    level_two: list[torch.Tensor] = []
    links: list[tuple[tuple, torch.Tensor]] = []
    handles = [net.unet.down[1].register_forward_hook(lambda _m, _i, out: level_two.append(out[0]))]
    handles += [
        module.register_forward_hook(lambda _m, inputs, out: links.append((inputs, out[0]))) for module in net.ccsa
    ]
    try:
        with torch.no_grad():
            net(image, mask)
    finally:
        for handle in handles:
            handle.remove()
    assert len(level_two) == 4 and len(links) == 3
    for link, ((high, low, known, previous), _) in enumerate(links):
        block = link + 1
        assert torch.equal(high, level_two[block])  # scores from BB_j's own level-2 feature
        used_by_previous = level_two[0] if link == 0 else links[link - 1][1]  # BB_{j−1}'s, after its own CCSA
        assert torch.equal(low, used_by_previous) and torch.equal(previous.features, used_by_previous)
        assert not torch.allclose(low, high, atol=1e-3)
        assert torch.equal(known, csfc.refinement_known(mask))


_RENORMALISES = {  # the spec's layer table (PSR-Net's mul flags): stem and levels 1–2 renormalise, deeper not
    "stem1": True, "stem2": True, "head_pconv": True,
    "down1": True, "down2": True, "down3": False, "down4": False, "down5": False, "down6": False,
    "u0": True, "u1": True, "u2": False, "u3": False, "u4": False, "u5": False,
}


def test_partial_convolutions_renormalise_as_the_layer_table_says() -> None:
    with torch.device("meta"):
        model = csfc.build(csfc.Config(bb_depths=(2, 4, 6, 6)))  # depth 6 builds every down/up layer
    flags = {"stem1": model.stem1.conv.renormalize, "stem2": model.stem2.conv.renormalize,
             "head_pconv": model.head_pconv.renormalize}
    flags |= {f"down{level + 1}": block.conv.renormalize for level, block in enumerate(model.unet.down)}
    flags |= {f"u{level}": block.conv.renormalize for level, block in enumerate(model.unet.up)}
    assert flags == _RENORMALISES


@pytest.mark.parametrize("size", [(64, 128), (128, 64)])
def test_output_shape_and_range(net: csfc.CSFC, size: tuple[int, int]) -> None:
    image, mask = _inputs(1, *size, seed=1)
    with torch.no_grad():
        out = net(image, mask)
    assert out.shape == (1, 3, *size)
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0


def test_hole_content_never_reaches_the_network(net: csfc.CSFC) -> None:
    image, mask = _inputs(1, 64, 64, seed=2)
    garbage = image * mask + (1 - mask) * torch.rand_like(image) * 5
    with torch.no_grad():
        assert torch.equal(net(image, mask), net(garbage, mask))


def test_not_divisible_sizes_raise_clear_error(net: csfc.CSFC) -> None:
    rng = random.Random(0)
    sizes = [(rng.randint(8, 300), rng.randint(8, 300)) for _ in range(6)]
    sizes = [(h, w) for h, w in sizes if h % 64 or w % 64] + [(64, 96), (100, 128)]
    for height, width in sizes:
        with pytest.raises(ValueError, match=rf"divisible by 64 .*got {height}×{width}"):
            net(torch.rand(1, 3, height, width), torch.ones(1, 1, height, width))
    with pytest.raises(ValueError, match="mask"):
        net(torch.rand(1, 3, 64, 64), torch.ones(1, 2, 64, 64))


def test_gradient_reaches_every_parameter() -> None:
    torch.manual_seed(7)
    model = csfc.build().train()
    image, mask = _inputs(2, 64, 64, seed=3)
    mask[1, :, 8:40, 30:60] = 0
    out = model(image, mask)
    loss = (out - image).abs().mean()
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert bool(torch.isfinite(param.grad).all()), name
    assert float(model.stem1.conv.weight.grad.abs().sum()) > 0
    assert float(model.ccsa[1].blend_weight.grad.abs()) > 0  # λ of link 3 is trained
    assert model.ccsa[0].blend_weight is None  # the first link has nothing to blend


def test_default_parameter_count_is_stable_and_documented() -> None:
    with torch.device("meta"):
        model = csfc.build()
    count = sum(p.numel() for p in model.parameters())
    assert count == csfc.DEFAULT_PARAMETER_COUNT == 26_829_141
    assert "26,829,141" in (csfc.__doc__ or "") and "26,829,141" in registry.get_card("csfc").notes
    # ablations remove exactly their modules: SRA = 3 × (128·64 + 64); one CCSA = 4 dilated 3×3 + MLP + fuse + λ
    with torch.device("meta"):
        no_sra = sum(p.numel() for p in csfc.build(csfc.Config(use_sra=False)).parameters())
        no_ccsa = sum(p.numel() for p in csfc.build(csfc.Config(use_ccsa=False)).parameters())
    assert count - no_sra == 3 * (128 * 64 + 64)
    one_ccsa = 4 * (256 * 256 * 9 + 256) + (256 * 32 + 32) + (32 * 1024 + 1024) + (512 * 256 + 256)
    assert count - no_ccsa == 3 * one_ccsa + 2


def test_switch_variants_run() -> None:
    torch.manual_seed(8)
    image, mask = _inputs(1, 32, 48, seed=4)  # shallow blocks (pad multiple 8) keep this cheap
    variants = [
        dict(ccsa_share_weights=True, sim_norm="candidate", smooth="sum"),
        dict(smooth="diagonal"),
        dict(blend="validity", reconstruct="patch", sca_mode="parallel"),
        dict(use_sra=False, use_sca=False, head_inputs=3),
    ]
    for overrides in variants:
        model = csfc.build(csfc.Config(bb_depths=(2, 2, 2, 2), **overrides)).eval()
        with torch.no_grad():
            out, attention = model(image, mask, return_attention=True)
        assert out.shape == (1, 3, 32, 48) and bool(torch.isfinite(out).all()), overrides
        assert len(attention) == 3 and attention[0].shape == (1, 24, 24)
    assert csfc.Config(bb_depths=(2, 4, 6, 6)).pad_multiple == 128
    with pytest.raises(ValueError, match="depth"):
        csfc.Config(bb_depths=(1, 2))


# --------------------------------------------------------------------------------------------------------
# Card and contract functions
# --------------------------------------------------------------------------------------------------------


def test_card_matches_the_network() -> None:
    card = registry.get_card("csfc")
    assert card.module == "inpaintstudio.models.csfc.network" and card.family == "csfc"
    assert card.working_size == 128
    assert card.input.pad_multiple == csfc.Config().pad_multiple == 64
    assert card.input.value_range == (0.0, 1.0) and card.input.mask_hole_value == 0
    assert card.weights[0].filename == "csfc.safetensors" and card.weights[0].official_filename is None
    assert "No official checkpoint" in card.weights[0].source
    for item in ("INFERRED", "OPEN", "softmax scale 10", "SRA design", "u2-u5", "query's neighbourhood",
                 "input hole brought to level 2", "'two paths'", "configs/train/csfc.yaml"):
        assert item in card.notes


def test_contract_functions(net: csfc.CSFC) -> None:  # predict() is exercised by the engine test
    cfg = csfc.config_from_fixture({"config": {"bb_depths": [2, 4, 6, 6], "input_size": 256}})
    assert cfg == csfc.Config(bb_depths=(2, 4, 6, 6), input_size=256)
    with pytest.raises(ValueError, match="unknown CSFC config keys"):
        csfc.config_from_fixture({"config": {"widths": 3}})
    state = {"a": torch.ones(2)}
    remapped, report = csfc.remap_official_state_dict(state)
    assert remapped.keys() == state.keys() and report["dropped"] == [] and report["renamed"] == {}
    with pytest.raises(NotImplementedError, match="no parity fixture"):
        csfc.parity_forward(net, {})


def test_engine_runs_a_small_registered_card(tmp_path) -> None:
    torch.manual_seed(9)
    cfg = csfc.Config(bb_depths=(2, 2))
    weights = tmp_path / "csfc_small.safetensors"
    save_safetensors(csfc.build(cfg).state_dict(), weights)
    card = dataclasses.replace(registry.get_card("csfc"), name="test_csfc", config=cfg, weights_path=weights)
    registry.register(card)
    try:
        engine = loading.load("test_csfc", device="cpu")
        image = np.random.default_rng(0).random((32, 64, 3)).astype(np.float32)
        hole = np.zeros((32, 64), dtype=bool)
        hole[8:20, 10:40] = True
        first = engine.run(image, hole).image
        scribbled = image.copy()
        scribbled[hole] = 0.5
        second = engine.run(scribbled, hole).image
    finally:
        registry.unregister("test_csfc")
    assert first.shape == (32, 64, 3) and first.dtype == np.float32
    assert 0.0 <= first.min() and first.max() <= 1.0
    np.testing.assert_array_equal(first, second)


# --------------------------------------------------------------------------------------------------------
# Training recipe
# --------------------------------------------------------------------------------------------------------


def test_training_config_is_the_papers_recipe_and_reaches_the_trainer(tmp_path) -> None:
    from PIL import Image

    data = load_config_file(REPO / "configs" / "train" / "csfc.yaml")
    rng = np.random.default_rng(0)
    for k in range(6):
        Image.fromarray(rng.integers(0, 256, (150, 170, 3), dtype=np.uint8)).save(tmp_path / f"{k}.png")
    data["data"]["images"] = str(tmp_path)  # the file names the user's CelebA folder
    data.update(device="cpu", output_dir=str(tmp_path / "run"), progress=False)
    trainer = Trainer(TrainConfig.from_dict(data), vgg=VGGFeatures(16))
    assert trainer.card.name == "csfc" and trainer.net_cfg == csfc.Config()
    assert trainer.cfg.iterations == 1000 * 500  # epochs × iterations per epoch
    group = trainer.g_opt.param_groups[0]
    assert isinstance(trainer.g_opt, torch.optim.Adam)
    assert group["lr"] == pytest.approx(1e-4) and tuple(group["betas"]) == (0.9, 0.999)
    assert not trainer.g_sched.milestones  # constant learning rate
    assert trainer.discriminator is None
    assert (trainer.loss_cfg.hole_weight, trainer.loss_cfg.perceptual, trainer.loss_cfg.style) == (5.0, 0.05, 120.0)
    assert trainer.cfg.data.size == 128 and trainer.cfg.data.batch_size == 6
    batch = next(iter(trainer.loader()))
    assert batch["image"].shape == (6, 3, 128, 128) and batch["hole"].shape == (6, 1, 128, 128)
