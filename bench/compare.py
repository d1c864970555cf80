"""The report's webhook section: Overture and n8n side by side, and issue 17's targets
(completed runs/s >= 1.5x n8n; CPU per completed run <= n8n's; client p99 under 250 ms
at n8n's throughput; idle memory of web + worker at most n8n's, no process above
200 MiB)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.common import HOOK_CLIENTS, HOOK_REQUESTS, HOOK_SECONDS, HOOK_STEPS, N8N_PUBLISHED

if TYPE_CHECKING:
    from bench.webhooks import HookResult

P99_TARGET_MS = 250.0
PROCESS_CAP_MIB = 200.0


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def row(h: HookResult) -> str:
    paced = (f"{h.paced_rate:7.0f} {h.ms(0.5, True):7.0f} {h.ms(0.99, True):7.0f}"
             if h.paced_lat else f"{'-':>7} {'-':>7} {'-':>7}")
    sat = (f"{h.ms(0.5):7.0f} {h.ms(0.99):7.0f}" if h.lat else f"{'-':>7} {'-':>7}")
    return (f"{h.system:10} {h.requests:6d} {h.completed:6d} {h.seconds:6.1f} "
            f"{h.runs_per_s:7.0f} {h.cpu_per_run_ms:8.2f} {sat} {paced}")


def details(h: HookResult) -> list[str]:
    cpu = ", ".join(f"{k} {v / max(h.completed, 1) * 1000:.2f}" for k, v in h.cpu.items())
    out = [f"  {h.system}: statuses {h.statuses}, sent in {h.send_seconds:.1f}s; not succeeded "
           f"{h.failed}, unfinished after the wait {h.unfinished}; load generator "
           f"{h.load_cpu:.1f} CPU-s (not counted)",
           f"    CPU ms per completed run: {cpu} (total {sum(h.cpu.values()):.1f} CPU-s)"]
    if h.paced_lat:
        out.append(f"    paced at {h.paced_rate:.0f}/s: {h.paced_sent} sent, "
                   f"{len(h.paced_lat)} completed, the client at most {h.paced_late * 1000:.0f} "
                   "ms behind schedule")
    for m in h.memory:
        out.append(f"    idle pid {m.pid:>7} RSS {m.rss:6.1f} MiB  PSS {m.pss:6.1f} MiB  {m.name}")
    if h.memory:
        out.append(f"    idle total: RSS {sum(m.rss for m in h.memory):.0f} MiB, PSS "
                   f"{sum(m.pss for m in h.memory):.0f} MiB; largest RSS "
                   f"{max(m.rss for m in h.memory):.0f} MiB")
    return out + [f"    {n}" for n in h.notes]


def targets(ours: HookResult, n8n: HookResult | None) -> list[str]:
    out = ["Targets of issue 17 (Overture vs n8n, measured here):"]
    if n8n is None or not n8n.completed:
        out.append(f"  n8n not measured: runs/s vs n8n's published {N8N_PUBLISHED:.0f} "
                   f"executions/s on 2 vCPUs: {ours.runs_per_s / N8N_PUBLISHED:.2f}x "
                   "(target 1.5x; an indication only: other hardware)")
    else:
        ratio = ours.runs_per_s / n8n.runs_per_s if n8n.runs_per_s else 0.0
        out.append(f"  completed runs/s >= 1.5x n8n: {ours.runs_per_s:.0f} / "
                   f"{n8n.runs_per_s:.0f} = {ratio:.2f}x: {verdict(ratio >= 1.5)}")
        if n8n.cpu_per_run_ms:
            cpu = ours.cpu_per_run_ms / n8n.cpu_per_run_ms
            out.append(f"  CPU per completed run <= n8n's: {ours.cpu_per_run_ms:.2f} ms / "
                       f"{n8n.cpu_per_run_ms:.2f} ms = {cpu:.2f}x: {verdict(cpu <= 1.0)}")
    if ours.paced_lat:
        p99 = ours.ms(0.99, True)
        source = "n8n's measured" if n8n is not None and n8n.completed else "n8n's published"
        out.append(f"  client send-to-finished p99 < {P99_TARGET_MS:.0f} ms at {source} "
                   f"throughput ({ours.paced_rate:.0f}/s): {p99:.0f} ms: "
                   f"{verdict(p99 < P99_TARGET_MS)}")
    if ours.memory:
        pss = sum(m.pss for m in ours.memory)
        largest = max(ours.memory, key=lambda m: m.rss)
        if n8n is not None and n8n.memory:
            theirs = sum(m.pss for m in n8n.memory)
            out.append(f"  idle memory of web + worker <= n8n's (PSS, all processes): "
                       f"{pss:.0f} MiB / {theirs:.0f} MiB = {pss / theirs:.2f}x: "
                       f"{verdict(pss <= theirs)}")
        out.append(f"  no process above {PROCESS_CAP_MIB:.0f} MiB: largest RSS "
                   f"{largest.rss:.0f} MiB (pid {largest.pid}, {largest.name[:40]}): "
                   f"{verdict(largest.rss <= PROCESS_CAP_MIB)}")
    return out


def lines(ours: HookResult | None, n8n: HookResult | None) -> list[str]:
    if ours is None and n8n is None:
        return []
    out = ["", f"Webhook-triggered runs of a {HOOK_STEPS}-step workflow, one system at a time, "
           f"the same load generator ({HOOK_CLIENTS} keep-alive clients on loopback, at most "
           f"{HOOK_REQUESTS} requests and {HOOK_SECONDS:.0f}s), same 2 cores.",
           "Overture: `overture web` (gunicorn 2 x 8 threads) + `overture worker` (default "
           "2 x 8), PostgreSQL, Redis; n8n: one process, SQLite, Webhook node answering at "
           "once -> 3 Set nodes.",
           "latency = client send -> run finished (Overture: the run's finished_at; n8n: the "
           "response of a Webhook answering when its last node is done)"]
    head = (f"{'system':10} {'sent':>6} {'done':>6} {'secs':>6} {'runs/s':>7} {'CPU ms':>8} "
            f"{'p50 ms':>7} {'p99 ms':>7} {'paced/s':>7} {'p50 ms':>7} {'p99 ms':>7}")
    out += [head, "-" * len(head)]
    out += [row(h) for h in (ours, n8n) if h is not None]
    for h in (ours, n8n):
        if h is not None:
            out += details(h)
    if ours is not None:
        out += targets(ours, n8n)
    return out
