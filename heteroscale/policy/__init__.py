"""The scaling policy: pure functions from (spec, observation, state, now) to a Decision.

Nothing here performs I/O or reads the clock; the operator and the simulator both call it.
"""

from heteroscale.policy.decide import decide
from heteroscale.policy.decision import Decision
from heteroscale.policy.observation import Observation, PoolObservation

__all__ = ["Decision", "Observation", "PoolObservation", "decide"]
