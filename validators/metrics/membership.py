"""Membership inference by density ratio (DOMIAS-style, arXiv 2302.12580): is a real
record more likely under the synthetic data than under real data in general?

A generator that memorises puts extra synthetic mass around its training records, so
for a training member x the synthetic density p_S(x) is high *relative to* the real
population's density p_R(x) there, while for a record it never saw the two match. The
attack scores score(x) = log p_S(x) / p_R(x) and calls high scores members. Ranking by
synthetic distance alone (the older attack) is fooled by dense regions, where every
record, member or not, has a close synthetic neighbour; dividing by the real density
removes that.

Densities are k-nearest-neighbour estimates on the encoded record vectors
(`representation.py`): p(x) ~ 1 / r(x)^d with r the distance to the nearest point, so
log p_S / p_R = d * (log r_R(x) - log r_S(x)); the factor d does not change a ranking
and is dropped. A kNN estimate needs no bandwidth and stays usable in the tens to
hundreds of dimensions the encoders produce, where a Gaussian KDE flattens out.

Members are training records, non-members holdout records, and the reference real
set R is train and holdout together, each scored record's own point left out (its
second nearest neighbour is used). Both groups are then measured alike: a reference of
the holdout alone would put a holdout window's overlapping neighbours (stride < window)
or duplicate rows beside non-members only, and every synthetic set, noise included,
scored AUC 0.98 on sunspot windows that way.

Scores are clipped at 0: a record counts as evidence of membership only where the
synthetic data is denser than the real data (a synthetic record nearer to it than its
nearest real neighbour). How far the synthetic data stays from a record beyond that
says nothing about memorisation, only where the synthetic data's centre lies; and when
the holdout is a later block of a non-stationary series, that is the period's shift.
Unclipped, i.i.d. noise with a sunspot series' mean and sd scored AUC 0.81 on a
1924-2008 holdout block (more sunspots than 1700-1899), because the noise sits nearer
the quieter training period; clipped, 0.50, while a replay of the training path still
scores 1.00.

The true-positive rate is reported with a 95 % Clopper-Pearson interval over the
members, and the gate reads its lower end (as it reads anonymeter's risks): the
threshold is the non-members' 99th percentile, which a small holdout cannot resolve.
With 10 non-members (a 48-state panel's holdout) it is their maximum, so a member of
data the generator never saw beats it with chance 1/11, not 0.01, and the point rate
exceeded 0.1 for 25 % of draws of unrelated scores (15 % with 20; 0.6 % with 86); its
lower bound did for 4 % (1 %; none), while 10 copied members still give >= 0.69."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score
from statsmodels.stats.proportion import proportion_confint

from validators.metrics.neighbours import nearest

LOW_FPR = 0.01  # the false-positive rate the attack's true-positive rate is read at (Carlini et al. 2022)
CONFIDENCE = 0.95  # of the interval around the true-positive rate
TINY = 1e-9  # floor of a distance before its log: a synthetic copy (distance 0) scores highest, not inf


def density_ratio_scores(reference: np.ndarray, rows: np.ndarray, synthetic: np.ndarray) -> np.ndarray:
    """max(0, log r_R - log r_S) for the records reference[rows]; each record's own
    point is left out of R."""
    r_syn = nearest(synthetic, reference[rows])[:, 0]
    r_ref = _nearest_other(reference, rows)
    return np.maximum(0.0, np.log(r_ref + TINY) - np.log(r_syn + TINY))


def _nearest_other(reference: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Distance from reference[rows] to the nearest *other* reference row."""
    d = nearest(reference, reference[rows], k=2)
    return d[:, 1]  # column 0 is the row itself (or an exact duplicate: also a genuine other point at 0)


def attack_auc(member_scores: np.ndarray, non_member_scores: np.ndarray) -> float:
    """ROC AUC of "high score = member": 0.5 no signal, 1.0 every member found."""
    labels = np.r_[np.ones(len(member_scores)), np.zeros(len(non_member_scores))]
    return float(roc_auc_score(labels, np.r_[member_scores, non_member_scores]))


def tpr_at_fpr(member_scores: np.ndarray, non_member_scores: np.ndarray, fpr: float = LOW_FPR) -> float:
    """Share of members scored above the non-members' (1 - fpr) quantile: how many
    training records an attacker names with confidence while wrongly naming only `fpr`
    of the others. Chance level is `fpr` (a little above it on small holdouts)."""
    return float(np.mean(_named(member_scores, non_member_scores, fpr)))


def tpr_interval(member_scores: np.ndarray, non_member_scores: np.ndarray, fpr: float = LOW_FPR) -> tuple[float, float]:
    """The CONFIDENCE Clopper-Pearson interval of `tpr_at_fpr` over the members."""
    named = int(_named(member_scores, non_member_scores, fpr).sum())
    low, high = proportion_confint(named, len(member_scores), alpha=1.0 - CONFIDENCE, method="beta")
    return float(low), float(high)


def _named(member_scores: np.ndarray, non_member_scores: np.ndarray, fpr: float) -> np.ndarray:
    """Which members score above the non-members' (1 - fpr) quantile."""
    return member_scores > np.quantile(non_member_scores, 1.0 - fpr)


def membership_attack(
    train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *, n_attack: int, rng: np.random.Generator,
) -> dict[str, float]:
    """AUC and TPR at 1 % FPR (with its interval) of the density-ratio attack,
    `n_attack` members (from train) and as many non-members (from the holdout), train
    and holdout together the reference."""
    n = min(n_attack, len(train), len(holdout))
    reference = np.concatenate([train, holdout])
    members = rng.choice(len(train), n, replace=False)
    non_members = len(train) + rng.choice(len(holdout), n, replace=False)
    m, nm = (density_ratio_scores(reference, rows, synthetic) for rows in (members, non_members))
    low, high = tpr_interval(m, nm)
    return {"privacy.membership_auc": attack_auc(m, nm), "privacy.membership_tpr_at_1fpr": tpr_at_fpr(m, nm),
            "privacy.membership_tpr_at_1fpr_ci_low": low, "privacy.membership_tpr_at_1fpr_ci_high": high}
