"""The errors of the contracts sync: each says what to fix, naming the CSV line or the contract and month."""

from __future__ import annotations

from datetime import date


class ContractsError(ValueError):
    """The contracts CSV is unusable; ``problems`` lists ``(line, message)``, the header being line 1."""

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        self.problems = sorted(problems, key=lambda p: p[0])
        lines = "\n".join(f"  line {line}: {message}" for line, message in self.problems)
        count = len(self.problems)
        super().__init__(f"contracts file has {count} problem{'s' if count != 1 else ''}:\n{lines}")


class RetroactiveChangeError(ValueError):
    """The file would change what a closed month charged or covered, or omits contracts the table holds.

    ``changes`` maps each contract id to the closed months (first days) its change touches;
    ``omitted`` lists the ids the table holds and the file leaves out. Nothing was written.
    """

    def __init__(self, changes: dict[str, list[date]], omitted: list[str]) -> None:
        self.changes = changes
        self.omitted = omitted
        parts = []
        for contract_id, months in sorted(changes.items()):
            labels = ", ".join(f"{m:%Y-%m}" for m in months)
            parts.append(f"  contract {contract_id!r} changes closed month(s) {labels}")
        for contract_id in omitted:
            parts.append(f"  contract {contract_id!r} is in billing.contracts but not in the file "
                         "(the sync never deletes a contract: end it with term_end instead)")
        super().__init__(
            "contracts file refused, nothing changed:\n" + "\n".join(parts)
            + "\nIf this is intended, sync with allow_retroactive (run conf {\"allow_retroactive\": true}, "
            "CLI --allow-retroactive): corrections of the closed months then go to the earliest open period "
            "and the acceptance is audited."
        )
