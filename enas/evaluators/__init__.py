"""Evaluators: how a strategy's architectures get their rewards (see `base.Evaluator`).

    OneShot     shared supernet weights (ENAS)                              one_shot.py
    Standalone  every child trained from scratch, low fidelity (NAS-RL)     standalone.py
    Inherit     the same, each child starting from the supernet's weights   standalone.py
    parts of Standalone: the journal of finished evaluations (journal.py) and the engine
    driver that runs children in parallel with retries (driver.py)

Evaluators take explicit objects; `enas.build.build_evaluator` makes them from the config and
hands standalone ones the child function (`enas.build.run_child`) that workers call.
"""

from enas.evaluators.base import Evaluator  # noqa: F401
from enas.evaluators.one_shot import OneShot  # noqa: F401
from enas.evaluators.standalone import Inherit, Standalone, child_seed, inherited_state  # noqa: F401

EVALUATORS = ("one_shot", "standalone", "inherit")
