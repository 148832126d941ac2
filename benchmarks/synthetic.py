"""Synthetic face embeddings clustered like real ones, for scale benchmarks.

Random vectors make every clustering and ANN method look wrong: real dlib
embeddings are not unit length (mean norm ~1.43), share a common offset,
and vary more along some directions than others. ``FaceModel.fit`` takes
real embeddings with person labels (LFW) and keeps their mean, the
covariance of the people's centres and the pooled covariance of faces
around their person's centre; ``generate`` draws people from the first
Gaussian and faces from the second (each person with its own spread, drawn
log-normal), with people's photo counts drawn from the real ones (most
people once, a few hundreds of times).

``FaceModel.fallback()`` needs no data: isotropic, tuned to the medians
measured on LFW (same person 0.44, different people 0.81, Euclidean); its
distances are more concentrated than real ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FaceModel:
    mean: np.ndarray  # (d,)
    centre_factor: np.ndarray  # (d, d), centres = mean + z @ centre_factor.T
    within_factor: np.ndarray  # (d, d), faces = centre + s * z @ within_factor.T
    sizes: np.ndarray  # photo counts of real people, sampled with replacement

    @classmethod
    def fit(cls, x: np.ndarray, persons: np.ndarray) -> FaceModel:
        x = np.asarray(x, dtype=np.float64)
        names, code, counts = np.unique(persons, return_inverse=True, return_counts=True)
        sums = np.zeros((len(names), x.shape[1]))
        np.add.at(sums, code, x)
        centres = sums / counts[:, None]
        multi = counts[code] >= 2
        residual = (x - centres[code])[multi]
        # Unbiased within-person covariance: residuals around a mean of m
        # faces shrink by (m-1)/m.
        scale = (counts[code] / np.maximum(counts[code] - 1, 1))[multi]
        within = (residual * scale[:, None]).T @ residual / len(residual)
        between = np.cov(centres[counts >= 2].T) - within * np.mean(1 / counts[counts >= 2])
        return cls(
            mean=x.mean(axis=0),
            centre_factor=_factor(between),
            within_factor=_factor(within),
            sizes=counts,
        )

    @classmethod
    def fallback(cls, dim: int = 128) -> FaceModel:
        within_sd = 0.44 / np.sqrt(2 * dim)
        centre_sd = np.sqrt((0.81 / np.sqrt(2 * dim)) ** 2 - within_sd**2)
        rng = np.random.default_rng(12345)
        offset = rng.normal(size=dim)
        offset *= 1.2 / np.linalg.norm(offset)
        # LFW-like photo counts: 70% once, a long tail.
        sizes = np.concatenate([np.ones(70, int), np.full(15, 2), np.full(8, 3), [4, 5, 6, 8, 10, 20, 50]])
        return cls(offset, np.eye(dim) * centre_sd, np.eye(dim) * within_sd, sizes)

    def generate(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``n`` faces: (x float32 (n, d), person int64 (n,))."""
        rng = np.random.default_rng(seed)
        sizes: list[int] = []
        total = 0
        while total < n:
            size = int(min(rng.choice(self.sizes), n - total))
            sizes.append(size)
            total += size
        people = len(sizes)
        d = len(self.mean)
        centres = self.mean + rng.normal(size=(people, d)) @ self.centre_factor.T
        spread = rng.lognormal(0.0, 0.15, size=people)
        person = np.repeat(np.arange(people), sizes)
        noise = rng.normal(size=(n, d)) @ self.within_factor.T
        x = centres[person] + spread[person, None] * noise
        order = rng.permutation(n)
        return np.ascontiguousarray(x[order], dtype=np.float32), person[order]


def _factor(cov: np.ndarray) -> np.ndarray:
    """A square root of a covariance matrix (negative eigenvalues clipped)."""
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    return vectors * np.sqrt(np.clip(values, 0, None))


def distance_summary(x: np.ndarray, person: np.ndarray, pairs: int = 200_000, seed: int = 0) -> dict[str, float]:
    """Median same-person and different-people distances (Euclidean) and the
    1st percentile of the latter, from random pairs."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, len(x), pairs)
    b = rng.integers(0, len(x), pairs)
    keep = a != b
    a, b = a[keep], b[keep]
    dist = np.linalg.norm(x[a].astype(np.float64) - x[b], axis=1)
    same = person[a] == person[b]
    # Same-person pairs are rare among random pairs: add pairs within people.
    order = np.argsort(person, kind="stable")
    sp = person[order]
    within = [np.linalg.norm(x[order[i]] - x[order[i + 1]]) for i in range(len(sp) - 1) if sp[i] == sp[i + 1]]
    same_d = np.concatenate([dist[same], np.asarray(within)]) if within else dist[same]
    return {
        "same_median": float(np.median(same_d)) if len(same_d) else float("nan"),
        "different_median": float(np.median(dist[~same])),
        "different_p1": float(np.percentile(dist[~same], 1)),
        "mean_norm": float(np.linalg.norm(x, axis=1).mean()),
    }
