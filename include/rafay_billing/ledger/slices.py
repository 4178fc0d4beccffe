"""The ledger's unit, one organization's one UTC day: what is loaded, guarded and rated at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from rafay_billing.window import Window


@dataclass(frozen=True)
class DaySlice:
    """The ledger's unit: one organization's one UTC day."""

    org_id: str
    usage_date: date
    organization: str = ""

    @property
    def window(self) -> Window:
        return Window.for_day(self.usage_date)
