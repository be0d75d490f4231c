"""Relative-total-variation structure extraction (L. Xu, Q. Yan, Y. Xia, J. Jia, "Structure Extraction from Texture
via Relative Total Variation", SIGGRAPH Asia 2012), as the authors' MATLAB ``tsmooth`` computes it.

TSGL's 256 model reads an RTV-smoothed copy of the image as its texture input (``tsmooth(img, 0.015, 3, 0.001, 3)``
in the TSGL README). Each pass computes per-pixel texture weights from the current estimate and solves the sparse
system ``(I + λ·L_w) s = image``, where ``L_w`` is the weighted 4-neighbour graph Laplacian. ``solver="pcg"``
reproduces MATLAB's inexact solve (preconditioned conjugate gradients to a relative residual of 0.1 with a
modified incomplete Cholesky preconditioner), which is what the published texture images were made with;
``solver="direct"`` solves exactly (sparse LU, about twice as fast). Re-implemented from the paper and the
algorithm's description; no code copied.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["rtv_smooth"]


def _gaussian_taps(sigma: float) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', [1, bitor(round(5σ), 1)], σ)``."""
    size = int(math.floor(5 * sigma + 0.5)) | 1
    x = np.arange(size) - (size - 1) / 2
    taps = np.exp(-(x**2) / (2 * sigma * sigma))
    taps[taps < np.finfo(float).eps * taps.max()] = 0
    return taps / taps.sum()


def _rtv_weights(x: np.ndarray, sigma: float, sharpness: float) -> tuple[np.ndarray, np.ndarray]:
    """``computeTextureWeights``: 1/(windowed inherent variation · total variation) per forward difference."""
    from scipy.ndimage import convolve1d

    channels = x.shape[2]
    fx = np.zeros_like(x)
    fy = np.zeros_like(x)
    fx[:, :-1] = np.diff(x, axis=1)
    fy[:-1, :] = np.diff(x, axis=0)
    wto = 1.0 / np.maximum(np.sqrt(fx**2 + fy**2).sum(2) / channels, sharpness)
    taps = _gaussian_taps(sigma)
    smooth = convolve1d(convolve1d(x, taps, axis=1, mode="constant"), taps, axis=0, mode="constant")
    gfx = np.zeros_like(x)
    gfy = np.zeros_like(x)
    gfx[:, :-1] = np.diff(smooth, axis=1)
    gfy[:-1, :] = np.diff(smooth, axis=0)
    wx = wto / np.maximum(np.abs(gfx).sum(2) / channels, 0.001)
    wy = wto / np.maximum(np.abs(gfy).sum(2) / channels, 0.001)
    wx[:, -1] = 0
    wy[-1, :] = 0
    return wx, wy


def _rtv_system(wx: np.ndarray, wy: np.ndarray, lam: float) -> tuple[object, np.ndarray]:
    """``I + λ·L_w`` (weighted 4-neighbour graph Laplacian) over pixels in MATLAB's column-major order."""
    from scipy.sparse import coo_matrix

    h, w = wx.shape
    index = np.arange(h)[:, None] + h * np.arange(w)[None, :]
    rows = np.concatenate([index[:, :-1].ravel(), index[:-1, :].ravel()])
    cols = np.concatenate([index[:, 1:].ravel(), index[1:, :].ravel()])
    weights = lam * np.concatenate([wx[:, :-1].ravel(), wy[:-1, :].ravel()])
    diagonal = np.ones(h * w)
    np.add.at(diagonal, rows, weights)
    np.add.at(diagonal, cols, weights)
    matrix = coo_matrix(
        (np.concatenate([-weights, -weights, diagonal]),
         (np.concatenate([rows, cols, np.arange(h * w)]), np.concatenate([cols, rows, np.arange(h * w)]))),
        shape=(h * w, h * w),
    ).tocsr()
    return matrix, index


def _modified_incomplete_cholesky(diagonal: np.ndarray, down: np.ndarray, right: np.ndarray) -> np.ndarray:
    """MATLAB ``ichol(A, struct('michol', 'on'))`` for a 5-point matrix in column-major order: returns the squared
    pivots d². ``down``/``right`` are the couplings of pixel (i, k) to (i+1, k) / (i, k+1). Fill-in that IC(0)
    drops is subtracted from the diagonal of both rows it touches (row sums preserved). Runs along anti-diagonals,
    whose pixels depend only on their upper and left neighbours."""
    h, w = diagonal.shape
    pivots = np.zeros_like(diagonal)
    for step in range(h + w - 1):
        i = np.arange(max(0, step - w + 1), min(h, step + 1))
        k = step - i
        d = diagonal[i, k].copy()
        up = i > 0
        iu, ku = i[up] - 1, k[up]
        d[up] -= (down[iu, ku] ** 2 + down[iu, ku] * right[iu, ku]) / pivots[iu, ku]
        left = k > 0
        il, kl = i[left], k[left] - 1
        d[left] -= (right[il, kl] ** 2 + right[il, kl] * down[il, kl]) / pivots[il, kl]
        pivots[i, k] = d
    return pivots


def _rtv_solve(target: np.ndarray, wx: np.ndarray, wy: np.ndarray, lam: float, solver: str = "pcg") -> np.ndarray:
    """Solve (I + λ·L_w) s = target per channel, as ``tsmooth``'s ``solveLinearEquation``.

    ``pcg``: MATLAB's branch, preconditioned conjugate gradients from 0 with a modified incomplete Cholesky
    preconditioner, stopped at relative residual 0.1 (max 100 iterations). ``direct``: exact sparse LU solve.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import splu

    h, w, channels = target.shape
    matrix, index = _rtv_system(wx, wy, lam)
    order = index.ravel()
    rhs = np.zeros((h * w, channels))
    rhs[order] = target.reshape(h * w, channels)
    if solver == "direct":
        solution = splu(matrix.tocsc()).solve(rhs)
        return solution[order].reshape(h, w, channels)
    down, right = -lam * wy, -lam * wx
    pivots = np.sqrt(_modified_incomplete_cholesky(np.asarray(matrix.diagonal())[index], down, right))
    below = (down[:-1, :] / pivots[:-1, :]).ravel()
    beside = (right[:, :-1] / pivots[:, :-1]).ravel()
    factor = coo_matrix(
        (np.concatenate([pivots.ravel(), below, beside]),
         (np.concatenate([order, index[1:, :].ravel(), index[:, 1:].ravel()]),
          np.concatenate([order, index[:-1, :].ravel(), index[:, :-1].ravel()]))),
        shape=(h * w, h * w),
    ).tocsc()
    triangular = splu(factor, permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    solution = np.zeros_like(rhs)
    for c in range(channels):
        b = rhs[:, c]
        x, r = np.zeros_like(b), b.copy()
        limit = 0.1 * np.linalg.norm(b)
        rho, p = 1.0, np.zeros_like(b)
        for iteration in range(100):
            if np.linalg.norm(r) <= limit:
                break
            z = triangular.solve(triangular.solve(r), trans="T")
            rho_previous, rho = rho, float(r @ z)
            p = z if iteration == 0 else z + (rho / rho_previous) * p
            q = matrix @ p
            alpha = rho / float(p @ q)
            x += alpha * p
            r -= alpha * q
        solution[:, c] = x
    return solution[order].reshape(h, w, channels)


def rtv_smooth(image: np.ndarray, lam: float = 0.015, sigma: float = 3.0, sharpness: float = 0.001,
               iterations: int = 3, solver: str = "pcg") -> np.ndarray:
    """Relative-total-variation smoothing (Xu et al. 2012, ``tsmooth``). image H×W×C float in [0, 1] -> same.

    Each pass recomputes the texture weights from the current estimate with σ halved (floor 0.5) and solves
    ``(I + λ/2·L_w) s = image`` (see :func:`_rtv_solve` for ``solver``).
    """
    target = np.asarray(image, dtype=np.float64)
    estimate = target
    for _ in range(iterations):
        wx, wy = _rtv_weights(estimate, sigma, sharpness)
        estimate = _rtv_solve(target, wx, wy, lam / 2.0, solver)
        sigma = max(sigma / 2.0, 0.5)
    return estimate

