"""What every benchmark prints: a figure beside its target, PASS or FAIL."""
from __future__ import annotations

from dataclasses import dataclass

from gatewayd.config import DispatchConfig

# Dispatch policy for benchmarks: no quiet hours, a short idle poll.
POLICY = DispatchConfig(quiet_hours="", poll_interval=0.02)


@dataclass
class Result:
    name: str
    value: float
    unit: str
    target: str
    ok: bool | None          # None: a figure shown for information, with no target of its own

    def line(self) -> str:
        verdict = "INFO" if self.ok is None else "PASS" if self.ok else "FAIL"
        return f"{verdict}  {self.name}: {self.value:.3f} {self.unit}  ({self.target})" if self.ok is None \
            else f"{verdict}  {self.name}: {self.value:.3f} {self.unit}  (target {self.target})"
