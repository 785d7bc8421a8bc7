"""The pack's modules live in policies/, which the engine puts on sys.path; tests do the same."""

import sys
from pathlib import Path

POLICIES = Path(__file__).resolve().parents[2] / "policies"
if str(POLICIES) not in sys.path:
    sys.path.insert(0, str(POLICIES))
