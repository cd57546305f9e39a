"""Plan text shared by the plan tests."""

#: a minimal MRT plan on the bundled HeartSteps data (one marginal estimand)
BASE_MRT = """
[plan]
name = "t"
design = "mrt"
seed = 7

[data]
dataset = "heartsteps"
id = "user"
time = "decision_index_nogap"
treatment = "send"
outcome = "jbsteps30_log"
prob = "rand_prob"
availability = "avail"

[[estimands]]
name = "marginal"
moderators = "~ 1"
controls = "~ jbsteps30pre_log"
"""
