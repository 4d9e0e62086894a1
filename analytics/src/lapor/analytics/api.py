"""Analytics HTTP API: the completion figures agencies are judged on."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from lapor.analytics.domain import Completion
from lapor.analytics.read_model import completion_by_opd
from lapor.services.runtime import Runtime, runtime_of

router = APIRouter(tags=["analytics"])


class CompletionFigures(BaseModel):
    received: int
    resolved: int
    completion_rate: Decimal | None = Field(
        description="resolved / received x 100, truncated to two decimals; null if none"
    )

    @classmethod
    def of(cls, c: Completion) -> CompletionFigures:
        return cls(received=c.received, resolved=c.resolved, completion_rate=c.rate)


class OpdCompletion(CompletionFigures):
    opd: str | None = Field(description="null: received, not routed yet")
    opd_name: str | None


class CompletionReport(BaseModel):
    overall: CompletionFigures
    per_opd: list[OpdCompletion]


@router.get("/metrics/completion", response_model=CompletionReport)
async def get_completion(rt: Annotated[Runtime, Depends(runtime_of)]) -> CompletionReport:
    rows = await completion_by_opd(rt.db)
    total = Completion(sum(c.received for *_, c in rows), sum(c.resolved for *_, c in rows))
    return CompletionReport(
        overall=CompletionFigures.of(total),
        per_opd=[
            OpdCompletion(opd=opd, opd_name=name, **CompletionFigures.of(c).model_dump())
            for opd, name, c in rows
        ],
    )
