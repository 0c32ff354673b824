"""Policy curation, the HeteroScale paper's Algorithm 1 for one service: stress-test it under its
workload, simulate candidate scaling policies under the same conditions, keep the one that best
meets the objective, and write it as a PDServingGroup to shadow the running autoscaler (DryRun).

The simulation is :mod:`heteroscale.simulate`'s (the stress test, the lane engine, the baselines
and the oracle); this package only chooses what to run and reads the results.
"""

#: Round 1's candidates by default, the defaults among them (round 2 adds up to 29). Here, where
#: the commands' parsers read it without importing numpy.
BREADTH = 48
