"""The report's webhook section: Overture and n8n side by side, and issue 17's targets
(completed runs/s >= 1.5x n8n; CPU per completed run <= n8n's; client p99 under 250 ms
at n8n's throughput; idle memory of web + worker at most n8n's, no process above
200 MiB)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.common import HOOK_CLIENTS, HOOK_REQUESTS, HOOK_SECONDS, HOOK_STEPS, N8N_PUBLISHED
from bench.n8n_install import N8N_VERSION

if TYPE_CHECKING:
    from bench.webhooks import HookResult

P99_TARGET_MS = 250.0
PROCESS_CAP_MIB = 200.0


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def row(h: HookResult) -> str:
    paced = (f"{p.rate:7.0f} {p.ms(0.5):7.0f} {p.ms(0.99):7.0f}"
             if (p := h.paced[0] if h.paced else None) else f"{'-':>7} {'-':>7} {'-':>7}")
    sat = (f"{h.ms(0.5):7.0f} {h.ms(0.99):7.0f}" if h.lat else f"{'-':>7} {'-':>7}")
    return (f"{h.system:10} {h.requests:6d} {h.completed:6d} {h.seconds:6.1f} "
            f"{h.runs_per_s:7.0f} {h.cpu_per_run_ms:8.2f} {sat} {paced}")


def details(h: HookResult) -> list[str]:
    cpu = ", ".join(f"{k} {v / max(h.completed, 1) * 1000:.2f}" for k, v in h.cpu.items())
    out = [f"  {h.system}: statuses {h.statuses}, sent in {h.send_seconds:.1f}s; not succeeded "
           f"{h.failed}, unfinished after the wait {h.unfinished}; load generator "
           f"{h.load_cpu:.1f} CPU-s (not counted)",
           f"    CPU ms per completed run: {cpu} (total {sum(h.cpu.values()):.1f} CPU-s)"]
    for p in h.paced:
        out.append(f"    paced at {p.rate:.0f}/s ({p.of}'s throughput): {p.sent} sent, "
                   f"{len(p.lat)} completed, p50 {p.ms(0.5):.0f} ms, p99 {p.ms(0.99):.0f} ms; "
                   f"the client at most {p.late * 1000:.0f} ms behind schedule")
    for m in h.memory:
        out.append(f"    idle pid {m.pid:>7} RSS {m.rss:6.1f} MiB  PSS {m.pss:6.1f} MiB  {m.name}")
    if h.memory:
        out.append(f"    idle total: RSS {sum(m.rss for m in h.memory):.0f} MiB, PSS "
                   f"{sum(m.pss for m in h.memory):.0f} MiB; largest RSS "
                   f"{max(m.rss for m in h.memory):.0f} MiB")
    return out + [f"    {n}" for n in h.notes]


def targets(ours: HookResult, n8n: list[HookResult]) -> list[str]:
    measured = [h for h in n8n if h.completed]
    out = ["Targets of issue 17 (Overture vs n8n, measured here):"]
    if not measured:
        out.append(f"  n8n not measured: runs/s vs n8n's published {N8N_PUBLISHED:.0f} "
                   f"executions/s on 2 vCPUs: {ours.runs_per_s / N8N_PUBLISHED:.2f}x "
                   "(target 1.5x; an indication only: other hardware)")
    for h in measured:
        ratio = ours.runs_per_s / h.runs_per_s if h.runs_per_s else 0.0
        out.append(f"  completed runs/s >= 1.5x {h.system}: {ours.runs_per_s:.0f} / "
                   f"{h.runs_per_s:.0f} = {ratio:.2f}x: {verdict(ratio >= 1.5)}")
    for h in measured:
        if h.cpu_per_run_ms:
            cpu = ours.cpu_per_run_ms / h.cpu_per_run_ms
            out.append(f"  CPU per completed run <= {h.system}'s: {ours.cpu_per_run_ms:.2f} ms / "
                       f"{h.cpu_per_run_ms:.2f} ms = {cpu:.2f}x: {verdict(cpu <= 1.0)}")
    for p in ours.paced:
        p99 = p.ms(0.99)
        out.append(f"  client send-to-finished p99 < {P99_TARGET_MS:.0f} ms at {p.of}'s "
                   f"throughput ({p.rate:.0f}/s): {p99:.0f} ms: {verdict(p99 < P99_TARGET_MS)}")
    if ours.memory:
        pss = sum(m.pss for m in ours.memory)
        largest = max(ours.memory, key=lambda m: m.rss)
        for h in measured:
            if h.memory:
                theirs = sum(m.pss for m in h.memory)
                out.append(f"  idle memory of web + worker <= {h.system}'s (PSS, all "
                           f"processes): {pss:.0f} MiB / {theirs:.0f} MiB = "
                           f"{pss / theirs:.2f}x: {verdict(pss <= theirs)}")
        out.append(f"  no process above {PROCESS_CAP_MIB:.0f} MiB: largest RSS "
                   f"{largest.rss:.0f} MiB (pid {largest.pid}, {largest.name[:40]}): "
                   f"{verdict(largest.rss <= PROCESS_CAP_MIB)}")
    return out


def lines(ours: HookResult | None, n8n: list[HookResult]) -> list[str]:
    if ours is None and not n8n:
        return []
    out = ["", f"Webhook-triggered runs of a {HOOK_STEPS}-step workflow, one system at a time, "
           f"the same load generator ({HOOK_CLIENTS} keep-alive clients on loopback, at most "
           f"{HOOK_REQUESTS} requests and {HOOK_SECONDS:.0f}s), same 2 cores.",
           "Overture: `overture web` (gunicorn 2 x 8 threads) + `overture worker` (default "
           f"2 x 8), PostgreSQL, Redis; n8n {N8N_VERSION}: one process, SQLite, Webhook node "
           "answering at once -> 3 Set nodes; as it comes (expressions in an isolated-vm "
           "isolate), and with N8N_EXPRESSION_ENGINE=legacy (its fastest here).",
           "latency = client send -> run finished (Overture: the run's finished_at; n8n: the "
           "response of a Webhook answering when its last node is done)"]
    head = (f"{'system':10} {'sent':>6} {'done':>6} {'secs':>6} {'runs/s':>7} {'CPU ms':>8} "
            f"{'p50 ms':>7} {'p99 ms':>7} {'paced/s':>7} {'p50 ms':>7} {'p99 ms':>7}")
    systems = [h for h in (ours, *n8n) if h is not None]
    out += [head, "-" * len(head), *(row(h) for h in systems)]
    for h in systems:
        out += details(h)
    if ours is not None:
        out += targets(ours, n8n)
    return out
