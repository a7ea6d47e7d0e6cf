"""Synthetic studies for the analysis's simulation tests, built on the default task's figures
(participants' skill sd 0.1, attempts spread over a 168-hour window, public and private halves
of the test set scored with independent noise). Returns the tidy attempt frame the analysis
works on, with every participant enrolled."""

from __future__ import annotations

import numpy as np
import pandas as pd

WINDOW = 168.0


def synthetic_study(rng: np.random.Generator, sizes: dict[str, int], *,
                    skill: dict[str, float] | None = None, skill_sd: float = 0.1,
                    attempts: int = 40, noise: float = 0.05, spread: float = 0.2
                    ) -> pd.DataFrame:
    """Each participant has a true skill (their best method's PGR); each attempt's true PGR
    falls short of it by |N(0, spread)|; public and private scores add independent noise."""
    skill = skill or dict.fromkeys(sizes, 0.5)
    arms = np.repeat(list(sizes), list(sizes.values()))
    people = len(arms)
    talent = np.array([skill[a] for a in arms]) + rng.normal(0, skill_sd, people)
    true = talent[:, None] - np.abs(rng.normal(0, spread, (people, attempts)))
    hours = np.sort(rng.uniform(0, WINDOW, (people, attempts)), axis=1)
    pids = np.array([f"{a}-{i}" for i, a in enumerate(arms)])
    n = people * attempts
    return pd.DataFrame({
        "attempt_id": np.char.add(np.repeat(pids, attempts).astype(str),
                                  np.tile(np.char.add("-", np.arange(attempts).astype(str)),
                                          people)),
        "participant_id": np.repeat(pids, attempts), "display_name": np.repeat(pids, attempts),
        "arm": np.repeat(arms, attempts), "kind": "agent", "task": "t", "status": "scored",
        "public_pgr": (true + rng.normal(0, noise, true.shape)).ravel(),
        "private_pgr": (true + rng.normal(0, noise, true.shape)).ravel(),
        "true_pgr": true.ravel(), "calendar_hours": hours.ravel(), "flagged": np.zeros(n, bool),
    })
