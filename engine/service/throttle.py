"""Failed sign-ins slow down guessing: after ACCOUNT_LIMIT failures on one account, or
ADDRESS_LIMIT from one address, within WINDOW, the console refuses further attempts there
(without checking the password) until the oldest of those failures is WINDOW old.

Counted from the audit trail (`login.failed`, with its address), so every `runbook serve`
sharing a store counts the same failures. A refused attempt is audited as
`login.throttled` but is no failure: waiting out the window always works. An unknown name
is counted like a known one, so the answer never tells which names exist.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .store import Store

WINDOW = 15 * 60.0  # seconds
ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 20


@dataclass(frozen=True)
class Throttled:
    """Why sign-ins are refused here for now, and for how many more seconds."""

    scope: str  # "account" or "address"
    wait: float

    def message(self) -> str:
        minutes = max(1, math.ceil(self.wait / 60))
        where = "for this account" if self.scope == "account" else "from your address"
        return (f"Too many failed sign-ins {where}: try again in {minutes} minute{'s' if minutes > 1 else ''}. "
                f"(After {ACCOUNT_LIMIT if self.scope == 'account' else ADDRESS_LIMIT} failures in "
                f"{WINDOW / 60:.0f} minutes, sign-ins wait.)")


def _wait(ages: list[float], limit: int) -> float:
    return WINDOW - ages[limit - 1] if len(ages) >= limit else 0.0


def check(store: Store, name: str, address: str) -> Throttled | None:
    """None when `name` may try a password now from `address`."""
    account = _wait(store.failed_sign_ins(WINDOW, who=name, limit=ACCOUNT_LIMIT), ACCOUNT_LIMIT)
    if account > 0:
        return Throttled("account", account)
    if address:
        by_address = _wait(store.failed_sign_ins(WINDOW, address=address, limit=ADDRESS_LIMIT), ADDRESS_LIMIT)
        if by_address > 0:
            return Throttled("address", by_address)
    return None
