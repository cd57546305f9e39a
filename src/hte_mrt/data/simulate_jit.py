r"""The illustrative MRT of Pieper, Fallon & Heinzl (2024), simulated with known effects.

Pieper M., Fallon M., Heinzl A. (2024), "Micro-randomized trials in Information Systems
research", Journal of Information Technology, doi:10.1177/02683962241280287 (their
illustrative study, after Fallon et al. 2021): a 28-day physical-activity app with a weekly
activity goal and two kinds of decision points.

Design (defaults = the paper's)
-------------------------------
* 28 days, 3 blocks a day (morning, afternoon, evening); block b of day d is decision
  ``decision`` = 3 d + b of type 2.
* **Type 1, goal feedback** once a day (block 0): ``none``, ``subgoal`` message or
  ``overall`` (overall-goal) message with probability 1/3 each (the paper's 0.33).
* **Type 2, social feedback** three times a day: sent with probability 0.5; available with
  probability ``availability`` (about 0.8).
* **Proximal outcomes**: minutes of feedback-feature use (type 1) and social-feature use
  (type 2) in the 60 minutes after the decision; skewed (many zeros, a long right tail), analysed
  as ``log1p(minutes)`` (columns ``*_log``).
* **Moderator**: the stage of goal pursuit when the decision is made, from the share of this
  week's goal already reached: ``beginning`` [0, 1/3), ``middle`` [1/3, 2/3), ``end``
  [2/3, 1); endogenous (it depends on past activity, which depends on past treatment).
* **Exclusion rule**: once the weekly goal is reached, the rest of that week's decision points
  of both types are excluded (availability 0, column ``goal_reached`` = 1; their ``stage`` is
  ``end``).
* **Distal outcomes**: total physical activity over the 28 days (minutes, ``total_pa``) and the
  number of weeks whose goal was reached (``goal_weeks``), constant within participant.
* 55 participants give 1540 type-1 and 4620 type-2 decision points (rows).

Data-generating process
-----------------------
Participant i has a weekly goal G_i = ``weekly_goal`` x exp(0.2 z_i) (minutes), and
engagement terms u_i = ``use_participant`` x Beta(2, 2) (feature use) and
v_i ~ N(0, ``sd_pa_participant``^2) (activity). With stage s at the decision, a feature-use
outcome on the log scale is

.. math::

    L = B \cdot \{\text{base}_s + \text{effect}_{a,s} + u_i + \varepsilon\}, \qquad
    B \sim \text{Bernoulli}(1 - p_0), \quad \varepsilon \sim c\,\text{Beta}(2, 4),

(no use at all with probability p_0 = ``p_no_use``, independent of everything; c =
``use_noise``), minutes = exp(L) - 1: zero-inflated and right-skewed, and never above the
60-minute window (the parameters are checked so that the largest possible L is log 61).
Physical activity in a block is

.. math::

    P = \exp\{\mu_P + v_i + \gamma_F L^{F} + \gamma_S L^{S} + \delta A^{S}
    + \sigma_P e\}

(L^F the block's feedback-feature use, on block 0 only; L^S its social-feature use; A^S its
social feedback), so feature use carries part of the treatments' effect to activity (H5,
mediated) and social feedback also acts directly (delta = ``pa_direct``).

Known effects (the hypotheses)
------------------------------
H1 / H2 (goal feedback on log feedback-feature use, overall / by stage) and H3 / H4 (social
feedback on log social-feature use, overall / by stage) are causal excursion effects
E[L(a) - L(0) | stage, I = 1] = (1 - p_0) effect_{a,s}: exact, because the treatment enters L
additively and independently of the use indicator (``base_s + effect_{a,s} >= 0`` is required
so that L >= 0). The stage-marginal effects (moderators ``"~ 1"``) average these over the
stage distribution of available decision points, which the endogenous stage makes a Monte Carlo
quantity. H5 (social feedback, or a goal message, on total activity) is the DCEE and its NDEE /
NIEE through the feature use the treatment targets, as
:class:`~hte_mrt.data.simulate_distal.DistalSimulation` defines them, computed by brute
force from potential outcomes (common random numbers, each decision's treatment set in turn,
future decisions at the policy) with Monte Carlo standard errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd

from hte_mrt.data.checks import check_int, check_seed, check_setting
from hte_mrt.data.schema import MRTData
from hte_mrt.errors import DesignError

SeedLike = int | np.random.SeedSequence | np.random.Generator | None
STAGES = ("beginning", "middle", "end")
GOAL_LEVELS = ("none", "subgoal", "overall")
BLOCKS = 3


@dataclass(frozen=True)
class JITTrial:
    """One simulated JIT study: the two decision types' :class:`MRTData` and per-participant
    distal outcomes (``participants``: id, weekly_goal, total_pa, goal_weeks)."""

    goal: MRTData
    social: MRTData
    participants: pd.DataFrame = field(repr=False)

    def __repr__(self) -> str:
        return (f"<JITTrial: {self.goal.n_participants} participants, "
                f"{len(self.goal.frame)} goal-feedback and {len(self.social.frame)} "
                "social-feedback decision points>")  # fmt: skip


def _stage_code(share: np.ndarray) -> np.ndarray:
    """0 beginning [0, 1/3), 1 middle [1/3, 2/3), 2 end [2/3, ...)."""
    return np.where(share < 1 / 3, 0, np.where(share < 2 / 3, 1, 2))


@dataclass(frozen=True)
class JITSimulation:
    r"""Simulator of the Pieper et al. (2024) JIT study with known effects for H1 to H5.

    See :mod:`hte_mrt.data.simulate_jit` for the design, the data-generating process and the
    definitions of the true effects.

    Parameters
    ----------
    n_participants, n_days
        55 and 28 in the paper (1540 type-1, 4620 type-2 decision points).
    prob_goal
        Randomization probabilities of ``none``, ``subgoal``, ``overall`` (1/3 each).
    prob_social
        P(social feedback | available), 0.5.
    availability, availability_goal
        P(available) of a type-2 (0.8) and a type-1 (1.0) decision point before the weekly goal
        is reached (afterwards 0: the exclusion rule).
    weekly_goal
        Typical weekly activity goal (minutes); each participant's goal varies around it.
    goal_effect
        {"subgoal": (b, m, e), "overall": (b, m, e)}: the effect of each message on log
        feedback-feature use among users, by stage (beginning, middle, end).
    social_effect
        (b, m, e): the effect of social feedback on log social-feature use among users, by stage.
    feedback_base, social_base
        Baseline log feature use among users by stage (>= minus the effects).
    p_no_use
        P(no feature use at all in the 60 minutes), independent of treatment.
    use_participant, use_noise
        Upper bounds of the participant engagement term u_i and of the noise (Beta-shaped).
    pa_mu, sd_pa_participant, sd_pa
        Log-activity intercept (per block), participant and block sd of log activity.
    pa_feedback, pa_social, pa_direct, pa_goal_direct
        Effects on log activity (in the decision's block) of feedback-feature use,
        social-feature use (the mediators of H5), and of social feedback and of a goal message
        directly.

    Examples
    --------
    >>> import hte_mrt as hm
    >>> sim = hm.JITSimulation()
    >>> trial = sim.mrt_data(seed=1)
    >>> trial
    <JITTrial: 55 participants, 1540 goal-feedback and 4620 social-feedback decision points>
    >>> trial.goal.level_values
    ['none', 'subgoal', 'overall']
    >>> truth = sim.proximal_truth()
    >>> truth.query("hypothesis == 'H4'")[["level", "stage", "estimate"]].reset_index(drop=True)
         level      stage  estimate
    0  social  beginning     0.175
    1  social     middle     0.105
    2  social        end     0.035
    """

    n_participants: int = 55
    n_days: int = 28
    prob_goal: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3)
    prob_social: float = 0.5
    availability: float = 0.8
    availability_goal: float = 1.0
    weekly_goal: float = 150.0
    goal_effect: Mapping[str, tuple[float, float, float]] = field(
        default_factory=lambda: {"subgoal": (0.3, 0.2, 0.1), "overall": (0.1, 0.2, 0.3)}
    )
    social_effect: tuple[float, float, float] = (0.25, 0.15, 0.05)
    feedback_base: tuple[float, float, float] = (0.6, 0.8, 1.0)
    social_base: tuple[float, float, float] = (0.5, 0.5, 0.6)
    p_no_use: float = 0.3
    use_participant: float = 0.8
    use_noise: float = 2.0
    pa_mu: float = 1.7
    sd_pa_participant: float = 0.3
    sd_pa: float = 0.6
    pa_feedback: float = 0.1
    pa_social: float = 0.2
    pa_direct: float = 0.05
    pa_goal_direct: float = 0.05

    def __post_init__(self) -> None:
        c = "JITSimulation"
        chk = partial(check_setting, c)

        chk("int", "n_participants", self.n_participants, minimum=2)
        chk("int", "n_days", self.n_days, minimum=1)
        if len(tuple(self.prob_goal)) != 3:
            raise DesignError(f"{c}: prob_goal must be 3 probabilities (none, subgoal, overall).")
        for k, p in enumerate(self.prob_goal):
            chk("num", f"prob_goal[{k}]", p, low=0.0, high=1.0)
        if abs(sum(self.prob_goal) - 1.0) > 1e-9:
            raise DesignError(
                f"{c}: prob_goal must sum to 1, got {self.prob_goal!r} (sum "
                f"{sum(self.prob_goal):g}); use (1/3, 1/3, 1/3) rather than 0.33 each."
            )
        chk("num", "prob_social", self.prob_social, low=0.0, high=1.0)
        for name in ("availability", "availability_goal"):
            chk("num", name, getattr(self, name), low=0.0, high=1.0, high_open=False)
        chk("num", "weekly_goal", self.weekly_goal, low=0.0)
        chk("num", "p_no_use", self.p_no_use, low=0.0, high=1.0, low_open=False)
        for name in ("use_participant", "use_noise", "sd_pa_participant", "sd_pa"):
            chk("num", name, getattr(self, name), low=0.0, low_open=False)
        for name in ("pa_mu", "pa_feedback", "pa_social", "pa_direct", "pa_goal_direct"):
            chk("num", name, getattr(self, name))
        if not isinstance(self.goal_effect, Mapping) or set(self.goal_effect) != {
            "subgoal",
            "overall",
        }:
            raise DesignError(
                f"{c}: goal_effect must be {{'subgoal': (b, m, e), 'overall': (b, m, e)}}, got "
                f"{self.goal_effect!r}."
            )
        for name, base, effects in (
            ("goal_effect['subgoal']", self.feedback_base, self.goal_effect["subgoal"]),
            ("goal_effect['overall']", self.feedback_base, self.goal_effect["overall"]),
            ("social_effect", self.social_base, self.social_effect),
        ):
            if len(tuple(effects)) != 3 or len(tuple(base)) != 3:
                raise DesignError(f"{c}: {name} and its base need one value per stage (3).")
            for s, (b, e) in enumerate(zip(base, effects, strict=True)):
                chk("num", f"{name}[{s}]", e)
                if b + min(e, 0.0) < 0:
                    raise DesignError(
                        f"{c}: {name}[{s}] = {e:g} with base {b:g} would make log feature use "
                        "negative; keep base + effect >= 0 at every stage."
                    )
                top = b + max(e, 0.0) + self.use_participant + self.use_noise
                if top > np.log(61.0) + 1e-12:
                    raise DesignError(
                        f"{c}: at stage {STAGES[s]} the largest log feature use, base + {name} "
                        f"+ use_participant + use_noise = {top:.3g}, exceeds log(61) = 4.11 (60 "
                        "minutes in the 60-minute window); lower use_noise or the base."
                    )

    # ------------------------------------------------------------------ simulation core
    @property
    def n_decisions(self) -> int:
        """Type-2 decision points per participant (3 a day)."""
        return BLOCKS * int(self.n_days)

    def _draws(self, n: int, seed: SeedLike) -> dict[str, np.ndarray]:
        check_seed(seed)
        rng = np.random.default_rng(seed)
        D, T = int(self.n_days), self.n_decisions
        return {
            "z_goal": rng.standard_normal(n),
            "u_part": self.use_participant * rng.beta(2.0, 2.0, n),
            "v_part": rng.standard_normal(n),
            # type 1 (per day)
            "u_avail1": rng.random((D, n)),
            "u_treat1": rng.random((D, n)),
            "use1": rng.random((D, n)),
            "eps1": self.use_noise * rng.beta(2.0, 4.0, (D, n)),
            # type 2 (per block)
            "u_avail2": rng.random((T, n)),
            "u_treat2": rng.random((T, n)),
            "use2": rng.random((T, n)),
            "eps2": self.use_noise * rng.beta(2.0, 4.0, (T, n)),
            "e_pa": rng.standard_normal((T, n)),
            "u_msg1": rng.random((D, n)),  # message type when a message is forced (H5, goal)
        }

    def _run(
        self,
        d: dict[str, np.ndarray],
        force_social: tuple[int, int, int] | None = None,
        force_goal: tuple[int, int, int] | None = None,
    ) -> dict[str, np.ndarray]:
        """One trial from the draws. ``force_social=(t, a, a_m)``: at type-2 decision t set the
        social feedback to a and draw the social-feature use (the mediator) as under a_m (where
        the decision is available). ``force_goal=(day, a, a_m)``: the same for the day's goal
        feedback, a = 1 meaning a message (subgoal or overall in the policy's proportions) and 0
        none, the feedback-feature use drawn as under a_m."""
        n = d["z_goal"].shape[0]
        D, T = int(self.n_days), self.n_decisions
        goal = self.weekly_goal * np.exp(0.2 * d["z_goal"])
        u, v = d["u_part"], self.sd_pa_participant * d["v_part"]
        pg = np.cumsum(self.prob_goal)
        fb_base, so_base = np.asarray(self.feedback_base), np.asarray(self.social_base)
        eff_goal = np.vstack([np.zeros(3), self.goal_effect["subgoal"],
                              self.goal_effect["overall"]])  # fmt: skip  # level x stage
        eff_soc = np.asarray(self.social_effect, dtype=float)
        out = {k: np.zeros((D, n)) for k in ("avail1", "stage1", "reached1", "level1", "L1")}
        out |= {k: np.zeros((T, n)) for k in ("avail2", "stage2", "reached2", "A2", "L2", "P")}
        cum = np.zeros(n)  # activity so far this week
        reached = np.zeros(n, dtype=bool)
        weeks = np.zeros(n)
        total = np.zeros(n)
        for day in range(D):
            if day % 7 == 0:
                cum[:] = 0.0
                reached[:] = False
            for b in range(BLOCKS):
                t = BLOCKS * day + b
                stage = _stage_code(cum / goal)
                LF = np.zeros(n)
                direct1 = np.zeros(n)
                if b == 0:  # type-1 decision: goal feedback
                    av1 = (~reached) & (d["u_avail1"][day] < self.availability_goal)
                    ut = d["u_treat1"][day]
                    lev = np.where(ut < pg[0], 0, np.where(ut < pg[1], 1, 2)) * av1
                    lev_m = lev
                    if force_goal is not None and force_goal[0] == day:
                        share = self.prob_goal[1] / (self.prob_goal[1] + self.prob_goal[2])
                        msg = np.where(d["u_msg1"][day] < share, 1, 2)
                        lev = msg * bool(force_goal[1]) * av1
                        lev_m = msg * bool(force_goal[2]) * av1
                    use = d["use1"][day] >= self.p_no_use
                    LF = use * (fb_base[stage] + eff_goal[lev_m, stage] + u + d["eps1"][day])
                    direct1 = self.pa_goal_direct * (lev > 0)
                    out["avail1"][day], out["stage1"][day] = av1, stage
                    out["reached1"][day], out["level1"][day], out["L1"][day] = reached, lev, LF
                av2 = (~reached) & (d["u_avail2"][t] < self.availability)
                a2 = av2 & (d["u_treat2"][t] < self.prob_social)
                a_m = a2
                if force_social is not None and force_social[0] == t:
                    a2 = av2 & bool(force_social[1])
                    a_m = av2 & bool(force_social[2])
                use = d["use2"][t] >= self.p_no_use
                LS = use * (so_base[stage] + eff_soc[stage] * a_m + u + d["eps2"][t])
                pa = np.exp(self.pa_mu + v + self.pa_feedback * LF + self.pa_social * LS
                            + self.pa_direct * a2 + direct1
                            + self.sd_pa * d["e_pa"][t])  # fmt: skip
                out["avail2"][t], out["stage2"][t], out["reached2"][t] = av2, stage, reached
                out["A2"][t], out["L2"][t], out["P"][t] = a2, LS, pa
                cum += pa
                total += pa
                newly = (~reached) & (cum >= goal)
                weeks += newly
                reached |= newly
        out |= {"goal": goal, "total_pa": total, "goal_weeks": weeks}
        return out

    # ------------------------------------------------------------------ public simulation
    def simulate(self, seed: SeedLike = None) -> dict[str, pd.DataFrame]:
        """One trial as frames ``{"goal": ..., "social": ..., "participants": ...}``.

        Type-1 rows (``goal``): id, day, goal_feedback (none / subgoal / overall), avail,
        goal_reached, stage, feedback_use (minutes), feedback_use_log, total_pa, goal_weeks.
        Type-2 rows (``social``): id, decision, day, block, social_feedback (0/1), prob, avail,
        goal_reached, stage, social_use, social_use_log, pa (activity in the block, minutes),
        total_pa, goal_weeks.
        """
        n, D, T = int(self.n_participants), int(self.n_days), self.n_decisions
        r = self._run(self._draws(n, seed))
        stage_cat = pd.CategoricalDtype(list(STAGES))

        def long(x: np.ndarray) -> np.ndarray:
            return x.T.reshape(-1)

        goal = pd.DataFrame(
            {
                "id": np.repeat(np.arange(n), D),
                "day": np.tile(np.arange(D), n),
                "goal_feedback": np.asarray(GOAL_LEVELS)[long(r["level1"]).astype(int)],
                "avail": long(r["avail1"]).astype(np.int64),
                "goal_reached": long(r["reached1"]).astype(np.int64),
                "stage": pd.Categorical.from_codes(long(r["stage1"]).astype(int), dtype=stage_cat),
                "feedback_use": np.expm1(long(r["L1"])),
                "feedback_use_log": long(r["L1"]),
                "total_pa": np.repeat(r["total_pa"], D),
                "goal_weeks": np.repeat(r["goal_weeks"], D).astype(np.int64),
            }
        )
        social = pd.DataFrame(
            {
                "id": np.repeat(np.arange(n), T),
                "decision": np.tile(np.arange(T), n),
                "day": np.tile(np.arange(T) // BLOCKS, n),
                "block": np.tile(np.arange(T) % BLOCKS, n),
                "social_feedback": long(r["A2"]).astype(np.int64),
                "prob": float(self.prob_social),
                "avail": long(r["avail2"]).astype(np.int64),
                "goal_reached": long(r["reached2"]).astype(np.int64),
                "stage": pd.Categorical.from_codes(long(r["stage2"]).astype(int), dtype=stage_cat),
                "social_use": np.expm1(long(r["L2"])),
                "social_use_log": long(r["L2"]),
                "pa": long(r["P"]),
                "total_pa": np.repeat(r["total_pa"], T),
                "goal_weeks": np.repeat(r["goal_weeks"], T).astype(np.int64),
            }
        )
        participants = pd.DataFrame(
            {"id": np.arange(n), "weekly_goal": r["goal"], "total_pa": r["total_pa"],
             "goal_weeks": r["goal_weeks"].astype(np.int64)}
        )  # fmt: skip
        return {"goal": goal, "social": social, "participants": participants}

    def mrt_data(self, seed: SeedLike = None) -> JITTrial:
        """One trial as a :class:`JITTrial`: ``goal`` (categorical treatment ``goal_feedback``
        with levels none / subgoal / overall, outcome ``feedback_use_log``, time ``day``) and
        ``social`` (binary ``social_feedback``, outcome ``social_use_log``, time
        ``decision``), both with availability ``avail`` (0 after the weekly goal is reached)."""
        f = self.simulate(seed)
        p0, p1, p2 = (float(p) for p in self.prob_goal)
        goal = MRTData(f["goal"], id="id", time="day", treatment="goal_feedback",
                       outcome="feedback_use_log", availability="avail",
                       levels={"none": p0, "subgoal": p1, "overall": p2})  # fmt: skip
        social = MRTData(f["social"], id="id", time="decision", treatment="social_feedback",
                         outcome="social_use_log", prob=float(self.prob_social),
                         availability="avail")  # fmt: skip
        return JITTrial(goal=goal, social=social, participants=f["participants"])

    # ------------------------------------------------------------------ truth
    def proximal_truth(self, n_participants: int = 0, seed: SeedLike = 0) -> pd.DataFrame:
        """True causal excursion effects of H1 to H4 on the log1p scale.

        Rows: hypothesis (H1 goal feedback overall, H2 by stage, H3 social feedback overall, H4
        by stage), ``decision`` (goal / social), ``outcome``, ``level`` (the message, or
        "social"), ``stage`` ("all" for the stage-marginal effect), ``estimate`` and ``se``
        (Monte Carlo SE; 0 where exact). The by-stage effects are exact,
        (1 - p_no_use) x effect; the stage-marginal ones (WCLS with ``moderators="~ 1"``)
        average them over the available decision points of ``n_participants`` simulated
        participants (0: only the exact by-stage rows).
        """
        q = 1.0 - self.p_no_use
        rows = []
        for lev in ("subgoal", "overall"):
            for s, name in enumerate(STAGES):
                rows.append(("H2", "goal", "feedback_use_log", lev, name,
                             q * self.goal_effect[lev][s], 0.0))  # fmt: skip
        for s, name in enumerate(STAGES):
            rows.append(("H4", "social", "social_use_log", "social", name,
                         q * self.social_effect[s], 0.0))  # fmt: skip
        n = check_int("n_participants", n_participants, 0)
        if n:
            n = max(n, 2)
            r = self._run(self._draws(n, seed))
            ids = np.arange(n)
            for lev in ("subgoal", "overall"):
                eff = q * np.asarray(self.goal_effect[lev])[r["stage1"].astype(int)]
                est, se = _row_mean(eff, r["avail1"] > 0, ids)
                rows.append(("H1", "goal", "feedback_use_log", lev, "all", est, se))
            eff = q * np.asarray(self.social_effect)[r["stage2"].astype(int)]
            est, se = _row_mean(eff, r["avail2"] > 0, ids)
            rows.append(("H3", "social", "social_use_log", "social", "all", est, se))
        out = pd.DataFrame(rows, columns=["hypothesis", "decision", "outcome", "level", "stage",
                                          "estimate", "se"])  # fmt: skip
        return out.sort_values(["hypothesis", "level"], kind="stable").reset_index(drop=True)

    def distal_truth(
        self,
        outcome: str = "total_pa",
        n_participants: int = 2000,
        seed: SeedLike = 0,
        decision: str = "social",
    ) -> pd.DataFrame:
        """H5: the DCEE of a decision type's treatment on the distal outcome and its NDEE / NIEE
        through the feature use it targets, by brute force from potential outcomes.

        ``decision="social"``: social feedback, mediator ``social_use_log``. ``"goal"``: a goal
        message (subgoal or overall, in the randomization's proportions) against none, mediator
        ``feedback_use_log``; the estimators see it as the binary treatment
        ``goal_feedback != "none"`` with probability 2/3. For every decision point of that type
        the trial of ``n_participants`` simulated participants is rerun (common random numbers)
        with the treatment set to 1 and 0, and with the mediator drawn as under the other arm;
        I_t times the differences are averaged over all rows, which is what
        ``dcee(moderators="~ 1")`` and ``mcee(effect="~ 1")`` target. ``outcome``:
        ``"total_pa"`` (minutes) or ``"goal_weeks"``. Returns ``effect`` (DCEE, NDEE, NIEE),
        ``estimate`` and ``se`` (Monte Carlo, over participants).
        """
        if outcome not in ("total_pa", "goal_weeks"):
            raise DesignError(
                f"JITSimulation.distal_truth: outcome must be 'total_pa' or 'goal_weeks', got "
                f"{outcome!r}."
            )
        if decision not in ("social", "goal"):
            raise DesignError(
                f"JITSimulation.distal_truth: decision must be 'social' or 'goal', got "
                f"{decision!r}."
            )
        n = check_int("n_participants", n_participants, 2)
        T = self.n_decisions if decision == "social" else int(self.n_days)
        key = "force_social" if decision == "social" else "force_goal"
        d = self._draws(n, seed)
        base = self._run(d)
        dcee, nde, nie = np.zeros(n), np.zeros(n), np.zeros(n)
        for t in range(T):
            avail_t = base["avail2" if decision == "social" else "avail1"][t]
            y11 = self._run(d, **{key: (t, 1, 1)})[outcome]
            y10 = self._run(d, **{key: (t, 1, 0)})[outcome]
            y00 = self._run(d, **{key: (t, 0, 0)})[outcome]
            dcee += avail_t * (y11 - y00)
            nde += avail_t * (y10 - y00)
            nie += avail_t * (y11 - y10)
        rows = []
        for name, per in (("DCEE", dcee), ("NDEE", nde), ("NIEE", nie)):
            per = per / T  # participant's average over its decision points
            rows.append((name, per.mean(), per.std(ddof=1) / np.sqrt(n)))
        out = pd.DataFrame(rows, columns=["effect", "estimate", "se"])
        out.insert(0, "hypothesis", "H5")
        out.insert(1, "decision", decision)
        out.insert(3, "outcome", outcome)
        return out

    def truth(
        self, n_participants: int = 2000, seed: SeedLike = 0, outcome: str = "total_pa"
    ) -> pd.DataFrame:
        """Every hypothesis' known effect in one table: :meth:`proximal_truth` (H1 to H4, the
        stage-marginal ones over ``n_participants`` simulated participants) and
        :meth:`distal_truth` (H5 on ``outcome``). Columns hypothesis, decision, outcome, level,
        stage, effect, estimate, se."""
        prox = self.proximal_truth(n_participants=n_participants, seed=seed)
        prox.insert(5, "effect", "CEE (log1p scale)")
        dist = pd.concat(
            [
                self.distal_truth(outcome, n_participants, seed, decision="social").assign(
                    level="social"
                ),
                self.distal_truth(outcome, n_participants, seed, decision="goal").assign(
                    level="any message"
                ),
            ],
            ignore_index=True,
        ).assign(stage="all")
        cols = ["hypothesis", "decision", "outcome", "level", "stage", "effect", "estimate", "se"]
        return pd.concat([prox[cols], dist[cols]], ignore_index=True)


def _row_mean(eff: np.ndarray, mask: np.ndarray, ids: np.ndarray) -> tuple[float, float]:
    """Mean of ``eff`` over masked (decision x participant) cells, and its SE as a ratio
    estimator over participants."""
    num = (eff * mask).sum(axis=0)
    den = mask.sum(axis=0).astype(float)
    est = num.sum() / den.sum()
    resid = num - est * den
    n = ids.shape[0]
    se = np.sqrt(np.sum(resid**2) / (n * (n - 1))) / den.mean()
    return float(est), float(se)
