"""Wait until a billing window's usage has settled, without holding a worker slot."""

from __future__ import annotations

from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync
from airflow.sdk import Context, timezone


class UsageSettledSensor(DateTimeSensorAsync):
    """Defers to the triggerer until ``target_time``; succeeds at once when it has already passed.

    Rafay aggregates usage with up to an hour's lag, so a window is pulled only after its end plus a
    settling delay. Backfills of past windows must not pay a triggerer round trip for nothing.
    """

    ui_color = "#e8f4ff"

    # The base declares ``execute`` NoReturn (it always defers); returning when the moment has passed
    # is this sensor's point, so the override narrows nothing a caller relies on.
    def execute(self, context: Context) -> None:  # type: ignore[override]
        if timezone.utcnow() >= self._moment:
            self.log.info("Usage for the window settled at %s; nothing to wait for.", self._moment.isoformat())
            return
        self.log.info("Waiting (deferred, no worker slot held) until %s for usage to settle.", self._moment)
        super().execute(context)
