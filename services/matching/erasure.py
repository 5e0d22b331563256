"""Erasure in matching: `PURGE_AFTER` after a case ended, was closed or opted out of, what
identifies its colleague leaves the case book, and its timeline and notes leave the desk."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.matching.desk_store import DeskRecords
from services.matching.store import CaseBook


@dataclass
class Erasure:
    book: CaseBook
    records: DeskRecords
    purge_after: timedelta
    log: Any

    async def purge_due(self) -> int:
        now = datetime.now(UTC)
        erased = await self.book.erase_ended(now - self.purge_after, now)
        if erased:
            await self.records.erase(erased)
            self.log.info("cases erased", cases=len(erased), purge_after=str(self.purge_after))
        return len(erased)
