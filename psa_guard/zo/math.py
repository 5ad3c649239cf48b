"""Pure tensor functions of zeroth-order (ZO) input-embedding optimisation (docs/method.md section 5).

Shapes: ``T`` prompt positions, ``D`` embedding size, ``N`` random directions.
"""

from __future__ import annotations

import torch

__all__ = [
    "sample_directions", "zo_gradient", "normalize_per_token", "project_cosine", "descent_step",
]


def sample_directions(
    reference: torch.Tensor, n: int, generator: torch.Generator
) -> torch.Tensor:
    """Gaussian directions scaled so each token's direction has its embedding's norm.

    Args:
        reference: (T, D) float, the original prompt embeddings.
        n: number of directions N.
        generator: torch random generator (seeded by the caller).

    Returns:
        (N, T, D) directions; ``u[j, t]`` has norm ``|reference[t]|``, so the perturbation scale
        ``mu`` is relative to each token's embedding (ours; TIDE states mu in absolute units).
    """
    noise = torch.randn((n, *reference.shape), generator=generator, dtype=reference.dtype)
    unit = noise / noise.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return unit * reference.norm(dim=-1, keepdim=True).unsqueeze(0)


def zo_gradient(
    f0: float, f_perturbed: torch.Tensor, directions: torch.Tensor, mu: float
) -> torch.Tensor:
    """Forward-difference ZO gradient estimate ``(1/N) sum_j (f(E + mu u_j) - f(E)) / mu * u_j``.

    Args:
        f0: objective at the current embeddings.
        f_perturbed: (N,) objective at each perturbed point.
        directions: (N, T, D) the directions ``u_j``.
        mu: perturbation scale (> 0).

    Returns:
        (T, D) gradient estimate.
    """
    weights = (f_perturbed.to(directions.dtype) - f0) / mu
    return torch.einsum("n,ntd->td", weights, directions) / directions.shape[0]


def normalize_per_token(gradient: torch.Tensor) -> torch.Tensor:
    """Scale each token's row to unit norm (rows that are zero stay zero). (T, D) -> (T, D)."""
    norms = gradient.norm(dim=-1, keepdim=True)
    return torch.where(norms > 0, gradient / norms.clamp_min(1e-12), gradient)


def project_cosine(
    embeddings: torch.Tensor, original: torch.Tensor, min_cos: float
) -> torch.Tensor:
    """Keep each token embedding within ``cos >= min_cos`` of its original.

    A row whose cosine with its original is below ``min_cos`` is rotated, in the plane spanned by
    the two, to exactly ``min_cos``, keeping its norm; other rows are unchanged.

    Args:
        embeddings: (T, D) current embeddings.
        original: (T, D) original embeddings.
        min_cos: the smallest allowed cosine, in [-1, 1].

    Returns:
        (T, D) projected embeddings.
    """
    u = original / original.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    norms = embeddings.norm(dim=-1, keepdim=True)
    cos = (embeddings * u).sum(-1, keepdim=True) / norms.clamp_min(1e-12)
    orthogonal = embeddings - (embeddings * u).sum(-1, keepdim=True) * u
    v = orthogonal / orthogonal.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    sine = (1.0 - min_cos**2) ** 0.5
    rotated = norms * (min_cos * u + sine * v)
    return torch.where(cos < min_cos, rotated, embeddings)


def descent_step(
    current: torch.Tensor, original: torch.Tensor, gradient: torch.Tensor, eta: float,
    min_cos: float,
) -> torch.Tensor:
    """One projected, per-token normalised descent step.

    ``E <- project(E - eta * |E0_t| * normalise(g)_t)``: each token moves by ``eta`` times its
    original embedding's norm against its own gradient row, then is projected back within
    ``cos >= min_cos`` of its original (:func:`project_cosine`).

    Args:
        current: (T, D) the embeddings ``E`` to move.
        original: (T, D) the original embeddings ``E0``.
        gradient: (T, D) the gradient estimate ``g`` (e.g. :func:`zo_gradient`).
        eta: step size, relative to each token's original norm (> 0).
        min_cos: the projection's smallest allowed cosine.

    Returns:
        (T, D) the new embeddings.
    """
    step = normalize_per_token(gradient) * original.norm(dim=-1, keepdim=True)
    return project_cosine(current - eta * step, original, min_cos)
