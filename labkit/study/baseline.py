"""The two baselines that any claim of "capturing the modes" must beat: a second real sample
(``floor``) and the best generator that knows the target's support but not its modes
(``support only``, its spread chosen by a grid search on seeds of its own)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from labkit import _checks
from labkit.study.config import BASELINES, TARGETS, StudyConfig
from labkit.study.evaluation import sample_metrics
from labkit.study.results import _rounded
from labkit.train import seed_stream


def support_only_points(target_name: str, n: int, spread: float,
                        generator: torch.Generator) -> torch.Tensor:
    """n points of the best generator that knows the target's support but not its modes.

    - ``"ring"``: uniform angle on the circle of the centres (radius R = 2), radius
      R + ``spread`` * N(0, 1) (a radial spread);
    - ``"grid"``: uniform over the square [-``spread``, ``spread``]^2.

    The draws do not depend on ``spread`` (angle and normal, or a uniform square, are scaled),
    so W1 against a fixed real sample is a smooth function of ``spread``.

    Returns
    -------
    Tensor (n, 2), float32
    """
    from labkit import toys

    _checks.choice("target_name", target_name, TARGETS)
    spread = _checks.finite_real("spread", spread, at_least=0)
    if target_name == "ring":
        radius = float(toys.ring().centers.norm(dim=1).max())
        angle = 2 * math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
        r = radius + spread * torch.randn(n, generator=generator, dtype=torch.float64)
        points = torch.stack([r * torch.cos(angle), r * torch.sin(angle)], 1)
    else:
        points = spread * (2 * torch.rand(n, 2, generator=generator, dtype=torch.float64) - 1)
    return points.float()


#: Candidate spreads searched by :func:`choose_spread`: radial std on the ring, half-width of the
#: square on the grid (whose centres span [-4, 4]).
SPREADS = {"ring": tuple(round(0.01 * k, 2) for k in range(11)),
           "grid": tuple(round(4.0 + 0.1 * k, 1) for k in range(16))}


#: Seeds the spread is chosen on, disjoint from any study's (0, 1, ...), so that the baseline is
#: not tuned on the points it is scored on.
SPREAD_SEEDS = (1000, 1001)


def choose_spread(target_name: str, n: int, seeds: Iterable[int] = SPREAD_SEEDS,
                  candidates: Sequence[float] | None = None) -> dict:
    """The support-only spread with the least exact W1 to the target, by a grid search.

    For each seed: n real points (its stream 3) and n support-only points (stream 5), the same
    draws for every candidate; the mean exact W1 over the seeds is minimised over
    ``candidates`` (default :data:`SPREADS`).

    Returns
    -------
    dict
        ``spread`` (the chosen value), ``candidates``, ``w1`` (mean exact W1 of each) and
        ``seeds``.
    """
    from labkit import ot, toys

    target = toys.make_target(target_name)
    seeds = [_checks.integer("seeds", s, minimum=0) for s in seeds]
    candidates = list(SPREADS[target_name] if candidates is None else candidates)
    w1 = np.zeros(len(candidates))
    for seed in seeds:
        real = target.sample(n, generator=seed_stream(seed, 3)).double()
        for k, spread in enumerate(candidates):
            fake = support_only_points(target_name, n, spread, seed_stream(seed, 5)).double()
            w1[k] += ot.w1(fake, real) / len(seeds)
    best = int(np.argmin(w1))
    return {"spread": candidates[best], "candidates": candidates, "w1": w1.tolist(),
            "seeds": seeds}


def baseline_points(kind: str, target_name: str, n: int, seed: int,
                    spread: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The (fake, real) points a baseline is scored on for one seed, each (n, 2).

    ``real``: the n real points the methods' final table uses for this seed (its stream 3);
    ``fake``: for ``"floor"`` a second real sample (stream 4), for ``"support only"``
    :func:`support_only_points` with ``spread`` (stream 5).
    """
    from labkit import toys

    _checks.choice("kind", kind, BASELINES)
    target = toys.make_target(target_name)
    real = target.sample(n, generator=seed_stream(seed, 3))
    if kind == "floor":
        return target.sample(n, generator=seed_stream(seed, 4)), real
    return support_only_points(target_name, n, spread, seed_stream(seed, 5)), real


def baselines(study: StudyConfig) -> dict[str, dict]:
    """The two baselines of every target, scored like the methods on the study's seeds.

    For seed s the methods' final table compares ``eval_samples`` generated points with real
    points from the seed's stream 3; the baselines replace the generated points by

    - ``floor``: a second, independent real sample (stream 4): the best any generator can
      score with this many points (its W1 is not 0);
    - ``support only``: :func:`support_only_points` (stream 5) with the spread of
      :func:`choose_spread` (chosen on :data:`SPREAD_SEEDS`, not on the study's seeds).

    Each seed's row also holds ``w1_curve``, the same baseline's exact W1 at the curves' size
    (``curve_samples`` points of each), the level to read the curves against (W1 between
    finite samples grows as they shrink).

    Returns
    -------
    dict
        ``{"floor/ring": {"final": [per seed]}, "support only/ring": {"final": [...],
        "spread": ..., "spread_search": choose_spread's dict}, ...}``.
    """
    from labkit import ot, toys

    out = {}
    for name in study.targets:
        target = toys.make_target(name)
        search = choose_spread(name, study.eval_samples)
        rows = {"floor": [], "support only": []}
        for seed in study.seeds:
            for kind in BASELINES:
                fake, real = baseline_points(kind, name, study.eval_samples, seed,
                                             search["spread"])
                fake_c, real_c = baseline_points(kind, name, study.curve_samples, seed,
                                                 search["spread"])
                rows[kind].append({"seed": seed, **sample_metrics(fake, real, target),
                                   "w1_curve": ot.w1(fake_c.double(), real_c.double())})
        out[f"floor/{name}"] = _rounded({"final": rows["floor"]})
        out[f"support only/{name}"] = _rounded({"final": rows["support only"],
                                                "spread": search["spread"],
                                                "spread_search": search})
    return out
