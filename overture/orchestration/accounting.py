"""What a step cost, written in the transaction that records it: its ledger (usage
keyed by the claim that ran it, budget holds settled, audit notes, tokens and cost,
agent calls against the run's `max_agent_calls`), and the step itself, metered once."""

from __future__ import annotations

from decimal import Decimal

from overture.billing import enforce, usage
from overture.billing.meters import STEPS
from overture.orchestration.graphs import graph_of
from overture.orchestration.ledger import Ledger
from overture.orchestration.models import Run, StepRun
from overture.orchestration.outcomes import Recordable, StepFailed
from overture.platform import audit


def write_ledger(run: Run, row: StepRun, ledger: Ledger, outcome: Recordable) -> Recordable:
    """Write what the step used and did; a run past its `max_agent_calls` fails here.
    The usage is keyed by the claim that ran the step: this attempt's, written once
    however often this transaction is tried (a later attempt has a claim of its own)."""
    if ledger.empty:
        return outcome
    usage.record(ledger.usage, attribution=attribution(run, row),
                 key=f"claim:{row.id}:{row.claim}")
    enforce.settle(ledger.holds)  # what the calls held now shows as used
    for note in ledger.audit:
        audit.record(note.action, target_type=note.target_type, target_id=note.target_id,
                     details={**note.details, "run_id": str(run.id), "step_id": row.step_id},
                     actor=note.actor)
    add_cost(run, row, ledger.tokens, ledger.cost)
    run.agent_calls += ledger.agent_calls
    limit = (graph_of(run).definition.get("policy") or {}).get("max_agent_calls")
    if limit is not None and ledger.agent_calls and run.agent_calls > int(limit):
        return StepFailed("max_agent_calls", f"the run made {run.agent_calls} agent calls, "
                          f"more than its maximum of {limit}")
    return outcome


def attribution(run: Run, row: StepRun) -> usage.Attribution:
    return usage.Attribution(workflow_id=run.workflow_id, run_id=run.id, step_id=row.step_id,
                             step_run_id=row.id, billed=not run.is_test)


def meter_step(run: Run, row: StepRun) -> None:
    """Count the step run as executed: once, whatever happens to it later (a delay
    that comes back, a wait that resumes), as the hot path does."""
    usage.record([usage.Entry(STEPS, Decimal(1))], attribution=attribution(run, row),
                 key=usage.step_key(row.id))


def add_cost(run: Run, row: StepRun, tokens: int, cost: Decimal) -> None:
    row.tokens += tokens
    row.cost += cost
    run.tokens += tokens
    run.cost += cost
