"""The correctness campaign (`convbench fuzz`): random edge-biased problems (generate.py), each
checked with every algorithm that runs it against the float64 oracle (campaign.py), and a
failure shrunk to a minimal problem that still fails (shrink.py).

One case is a pure function (seed, index) -> CaseResult, so that a campaign can be mapped over
processes or machines and its records gathered afterwards.
"""

from convbench.fuzz.campaign import CaseResult, CheckResult, Config, check_one, run_case
from convbench.fuzz.generate import draw
from convbench.fuzz.shrink import shrink

__all__ = ["CaseResult", "CheckResult", "Config", "check_one", "draw", "run_case", "shrink"]
