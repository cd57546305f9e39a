# %% [markdown]
# # Designing a micro-randomized trial: sample size, power and randomization
#
# Planning an MRT means choosing the number of participants $N$ for a trial of $D$ days with $K$
# decision points a day, given the randomization probability $p_t$, the expected availability
# $\tau_t$ and the standardized proximal effect $\beta_t$ one hopes to detect. This notebook
#
# 1. reproduces the MRT-SS calculator's reference case (Liao et al. 2016): $N = 46$;
# 2. draws the power curve and finds the minimum detectable effect at $N = 40$;
# 3. checks the formula by simulating whole trials, and shows where it fails (participants whose
#    effects differ);
# 4. draws a randomization schedule and audits a delivered-treatment log against it.
#
# Set the environment variable `HTE_MRT_QUICK=1` before starting the kernel for a quick run with
# small draws (the test suite does this); the default sizes are the ones to report.

# %% tags=["parameters"]
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import hte_mrt as hm

QUICK = os.environ.get("HTE_MRT_QUICK", "0") == "1"
N_SIMS = 200 if QUICK else 2000  # simulated trials per power estimate
SEED = 2026

# %% [markdown]
# ## The sample-size formula (Liao, Klasnja, Tewari & Murphy 2016)
#
# Decision points $t = 1, \dots, T = DK$ fall on days $j(t) = 0, \dots, D-1$. The effect is
# tested through a $p$-dimensional model $\beta_t = Z_t^\top d$, by default
# $Z_t = (1, j, j^2)$ truncated to the degree of the effect curve; the control model has $q = 3$
# terms. With
#
# $$
# M = \sum_t \tau_t\,p_t(1-p_t)\,Z_t Z_t^\top,\qquad
# \lambda(N) = N\, d^\top M d,
# $$
#
# the WCLS test of $H_0: d = 0$ has power
# $1 - F_{p,\,N-p-q;\,\lambda(N)}\bigl(F^{-1}_{p,\,N-p-q}(1-\alpha)\bigr)$ (noncentral $F$),
# and the sample size is the smallest $N$ reaching the target. $\beta_t$ is in units of the
# residual SD of the proximal outcome (a *standardized* effect).
#
# MRT-SS's reference case: 42 days, 5 decision points a day, $p_t = 0.4$; availability
# quadratic, 0.7 on day 1 and averaging 0.5 (lowest at the end); the effect quadratic, 0 on day 1,
# peaking on day 28 and averaging 0.1.

# %%
reference = dict(
    days=42,
    per_day=5,
    prob=0.4,
    availability=hm.Curve.quadratic(initial=0.7, mean=0.5, turn_day=42),
    effect=hm.Curve.quadratic(initial=0, mean=0.1, turn_day=28),
)
ss = hm.mrt_sample_size(**reference)
print(ss)
assert ss.n == 46  # MRT-SS gives 46

# %%
design = ss.design  # the design behind the calculation
daily = design.curves().groupby("day")[["effect", "availability", "fitted_effect"]].first()
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
daily[["effect", "fitted_effect"]].plot(ax=axes[0], style=["-", "--"])
axes[0].set_ylabel("standardized effect")
daily["availability"].plot(ax=axes[1])
axes[1].set_ylabel("availability")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Power curve and minimum detectable effect
#
# `power_table` gives the power at chosen $N$ (with the noncentrality and the $F$ degrees of
# freedom); `plot_power_curve` draws it, marking the target and the sample size.

# %%
print(hm.power_table([20, 30, 40, 46, 60, 80], **reference).round(3).to_string(index=False))
fig = hm.plot_power_curve(ss)
plt.show()

# %% [markdown]
# If only 40 participants can be recruited, `minimum_detectable_effect` scales the effect
# *shape* until the power is 80% and reports the average standardized effect of the scaled curve:
# the smallest effect of this shape the trial can expect to detect.

# %%
mde = hm.minimum_detectable_effect(40, **reference)
print(mde)
print(
    f"\nN = 40 detects an average standardized effect of {mde.mde:.3f} "
    f"(the reference curve x {mde.scale:.3f}) with 80% power"
)

# %% [markdown]
# What is tested matters as much as the size of the effect. The same effect tested only
# through its average (`z="constant"`, $p = 1$), or a constant effect of the same average, needs
# fewer participants than the three-parameter test of the quadratic:

# %%
alternatives = {
    "quadratic effect, tested as quadratic (p = 3)": reference,
    "quadratic effect, average tested (p = 1)": {**reference, "z": "constant"},
    "constant effect 0.1 (p = 1)": {**reference, "effect": hm.Curve.constant(0.1)},
}
pd.Series({k: hm.mrt_sample_size(**v).n for k, v in alternatives.items()}, name="N")

# %% [markdown]
# For a **binary** proximal outcome the analogue (Cohn, Qian & Murphy 2023) works on the
# log relative-risk scale; e.g. a relative risk of 1.2 on a success probability of 0.2 without
# treatment, 210 decision points, availability 0.8, $p_t = 0.4$:

# %%
print(
    hm.binary_sample_size(
        prob=0.4, availability=0.8, beta=np.log(1.2), null_coef=np.log(0.2), decisions=210
    )
)

# %% [markdown]
# ## Checking the formula by simulation
#
# `simulated_power` simulates whole trials from the calculator's inputs (Liao et al.'s working
# model: residual SD 1, errors independent over time), analyses each with WCLS and the same
# Hotelling-type $F$ test, and counts rejections. The result carries the Monte Carlo standard
# error $\sqrt{\hat\pi(1-\hat\pi)/R}$ for $R$ simulated trials and a Wilson interval, next to the
# analytic power at the same $N$.

# %%
sim = hm.simulated_power(46, **reference, n_reps=N_SIMS, seed=SEED, progress=False)
print(sim)

# %% [markdown]
# The simulation analyses each trial as one would analyse the real one, with the
# Mancl-DeRouen small-sample correction of the sandwich. That correction makes the test slightly
# conservative, so the simulated power tends to sit a little below the formula, which has no such
# correction: in long runs (20,000 simulated trials) about 0.79 against 0.80 at $N = 46$. With the
# plain sandwich (`small_sample=False`) simulation and formula agree:

# %%
plain = hm.simulated_power(
    46, **reference, n_reps=N_SIMS, seed=SEED, progress=False, small_sample=False
)
print(
    f"plain sandwich: simulated {plain.power:.3f} (MC SE {plain.mc_se:.3f}) "
    f"vs analytic {plain.analytic_power:.3f}"
)

# %% [markdown]
# ### When simulation and formula part ways: heterogeneous effects
#
# The formula assumes the residual is the only noise. If participants' effects differ,
# $\beta_{it} = \beta_t + u_i$ with $u_i \sim N(0, \mathrm{sd}_u^2)$, the marginal effect is
# unchanged but each participant's score carries $u_i$ with a weight that grows with the number
# of decision points, so $\operatorname{Var}(\hat d) = M^{-1}(M + \mathrm{sd}_u^2
# E[ww^\top])M^{-1}/N$ instead of $M^{-1}/N$. The extra term does not shrink as decision points
# are added. `heterogeneity_power` gives the formula with that term; the simulation (option
# `sd_slope`) should follow it, while Liao et al.'s formula stays put.

# %%
rows = []
for sd_u in [0.0, 0.05, 0.10, 0.15, 0.20]:
    s = hm.simulated_power(46, **reference, n_reps=N_SIMS, seed=SEED, progress=False, sd_slope=sd_u)
    rows.append(
        {
            "sd_slope": sd_u,
            "simulated": s.power,
            "mc_se": s.mc_se,
            "liao_formula": s.analytic_power,
            "formula_with_heterogeneity": hm.heterogeneity_power(design, 46, sd_u),
        }
    )
het = pd.DataFrame(rows)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.errorbar(
    het["sd_slope"],
    het["simulated"],
    yerr=1.96 * het["mc_se"],
    fmt="o",
    label="simulated (95% MC interval)",
)
ax.plot(het["sd_slope"], het["liao_formula"], "k--", label="Liao et al. formula")
ax.plot(het["sd_slope"], het["formula_with_heterogeneity"], "-", label="with heterogeneity term")
ax.set_xlabel("SD of participants' effects (standardized)")
ax.set_ylabel("power at N = 46")
ax.legend(frameon=False)
plt.show()
het.round(3)

# %% [markdown]
# With an SD of the participants' effects of 0.15, 1.5 times the average effect (not
# implausible in behavioural trials), the power at $N = 46$ drops from 0.80 to about 0.63. The
# test stays valid (the sandwich sees the between-person variance); the *sample size* is what is
# wrong. Solving the heterogeneity formula for $N$, and confirming by simulation:

# %%
n_het = next(n for n in range(46, 1000) if hm.heterogeneity_power(design, n, 0.15) >= 0.8)
check = hm.simulated_power(
    n_het, **reference, n_reps=N_SIMS, seed=SEED, progress=False, sd_slope=0.15
)
print(
    f"N = {n_het} for 80% power when sd_slope = 0.15; simulated power {check.power:.3f} "
    f"(MC SE {check.mc_se:.3f})"
)

# %% [markdown]
# Other departures from the working model cost less or nothing. Serially correlated errors
# (`rho`) cost nothing, because the centred treatments are randomized independently of the past;
# *availability feedback* (a participant less often available right after a treatment) lowers
# the realized availability and with it the power:

# %%
other = {
    "working model": {},
    "AR(1) errors, rho = 0.5": {"rho": 0.5},
    "availability feedback 0.2": {"availability_feedback": 0.2},
}
pd.concat(
    {
        k: hm.simulated_power(
            46, **reference, n_reps=N_SIMS, seed=SEED, progress=False, **kw
        ).table()
        for k, kw in other.items()
    },
    names=["scenario"],
)[["estimate", "se", "analytic_power", "availability_realized"]].droplevel(1).round(3)

# %% [markdown]
# ## The randomization schedule
#
# `RandomizationDesign` states the decision rule: here probability 0.4 of treatment at every
# available decision point, with the availability curve of the sample-size calculation.
# `schedule(n, seed)` draws availability and treatment for each participant and decision point
# from one seeded generator, so the schedule can be regenerated exactly (and written to CSV with
# `to_csv` for the app's back end).

# %%
availability = reference["availability"]  # the curve of the sample-size calculation
rdesign = hm.RandomizationDesign(days=42, per_day=5, probs=0.4, availability=availability)
print(rdesign.describe())
schedule = rdesign.schedule(46, seed=SEED)
schedule.head()

# %%
available = schedule[schedule["available"] == 1]
print(
    f"{len(schedule)} decision points, {len(available)} available "
    f"({len(available) / len(schedule):.3f}); treated when available: "
    f"{available['treatment'].mean():.3f} (stated 0.4)"
)

# %% [markdown]
# ## Auditing the delivered randomization
#
# During and after the trial, `audit` compares the delivered-treatment log with the stated
# probabilities. For each participant, and for each block of days pooled over participants, the
# number treated among available decision points is tested against its exact binomial
# (Poisson-binomial when the probability varies) distribution, with Holm's adjustment within each
# family of tests. It also lists treatments delivered while unavailable, missing decision points,
# duplicated and invalid rows. The schedule itself passes:

# %%
clean = hm.audit(schedule, rdesign)
print(clean.summary())
assert clean.ok

# %% [markdown]
# Now a log with three problems of the kind audits exist to catch: participant 7's app
# treated with probability 0.7 instead of 0.4, three treatments went out while the participant
# was unavailable, and participant 12's day 30 is missing from the log.

# %%
rng = np.random.default_rng(SEED)
log = schedule.copy()
p7 = (log["participant"] == 7) & (log["available"] == 1)
log.loc[p7, "treatment"] = rng.binomial(1, 0.7, p7.sum())
log.loc[log.index[log["available"] == 0][:3], "treatment"] = 1
log = log[~((log["participant"] == 12) & (log["day"] == 30))]

result = hm.audit(log, rdesign)
print(result.summary(max_rows=5))
assert 7 in result.flagged_participants

# %%
fig = result.plot()
plt.show()
result.flags().groupby("check").size()

# %% [markdown]
# ## Summary
#
# * The analytic calculator reproduces MRT-SS ($N = 46$) and gives power curves and minimum
#   detectable effects in milliseconds.
# * Simulation confirms the formula under its working model (the small-sample corrected test is
#   slightly conservative, about 0.01 in power at $N = 46$), and shows the one departure that
#   matters most: **between-person variation in the effect** lowers the power and is not
#   recovered by adding decision points; plan $N$ with `heterogeneity_power` if such variation is
#   plausible.
# * A seeded `RandomizationDesign` produces the schedule, and `audit` checks the delivered log
#   against it, flagging deviant participants, treatments while unavailable and missing
#   decision points.
