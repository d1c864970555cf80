"""n8n side by side with Overture's webhook phase (bench/webhooks.py): the same load
generator against n8n in its default single-process SQLite mode, on the same cores,
one system at a time.

n8n is installed from the npm registry into a cache folder (bench/n8n_install.py). Its
user folder (SQLite database, settings) is made once per version from the CLI (`n8n
import:workflow`, then published/activated) and kept as a template beside the install;
each run copies it into the run's scratch folder, so every run starts from an empty
execution history. The workflows: a Webhook node (POST) -> three Set nodes, one answering
at once (load: executions finished per second, CPU) and one answering when its last
node is done (the client's send-to-finished latency). Every execution is saved (success
and error), and counted from n8n's database.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bench import n8n_install, procstat
from bench.common import (
    HOOK_CLIENTS,
    HOOK_REQUESTS,
    HOOK_SECONDS,
    HOOK_STEPS,
    PACED_SECONDS,
    PHASE_TIMEOUT,
    free_port,
    note,
    wait_until,
)
from bench.httpload import get, load
from bench.webhooks import IDLE_WAIT, HookResult, Paced

if TYPE_CHECKING:
    from bench.engine import Bench

START_TIMEOUT = 120.0
CLI_TIMEOUT = 180.0
FLOWS = {"bench-now": "onReceived", "bench-last": "lastNode"}  # webhook path -> answer


def workflow(path: str, respond: str, index: int) -> dict[str, object]:
    def uid(name: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"overture-bench/{path}/{name}"))

    hook: dict[str, object] = {"httpMethod": "POST", "path": path, "responseMode": respond,
                               "options": {}}
    if respond == "lastNode":
        hook["responseData"] = "firstEntryJson"
    nodes: list[dict[str, object]] = [{
        "id": uid("webhook"), "name": "Webhook", "type": "n8n-nodes-base.webhook",
        "typeVersion": 2, "position": [0, 0], "webhookId": uid("webhook-id"),
        "parameters": hook}]
    connections: dict[str, object] = {}
    previous = "Webhook"
    for i in range(HOOK_STEPS):  # as Overture's `transform` steps: output = i
        name = f"Set {i}"
        nodes.append({
            "id": uid(name), "name": name, "type": "n8n-nodes-base.set", "typeVersion": 3.4,
            "position": [220 * (i + 1), 0],
            "parameters": {"mode": "manual", "includeOtherFields": False, "options": {},
                           "assignments": {"assignments": [{
                               "id": uid(f"{name}-a"), "name": "output", "value": i,
                               "type": "number"}]}}})
        connections[previous] = {"main": [[{"node": name, "type": "main", "index": 0}]]}
        previous = name
    return {"id": f"benchflow{index:07d}", "name": path, "nodes": nodes,
            "connections": connections, "active": False,
            "settings": {"executionOrder": "v1", "saveDataSuccessExecution": "all",
                         "saveDataErrorExecution": "all", "saveManualExecutions": False,
                         "saveExecutionProgress": False}}


def n8n_env(binary: str, user_folder: str, port: int, tmp: str) -> dict[str, str]:
    env = n8n_install.node_env(binary)
    env.update({
        "BENCH_TMP": tmp,
        "N8N_USER_FOLDER": user_folder,
        "N8N_PORT": str(port), "N8N_LISTEN_ADDRESS": "127.0.0.1", "N8N_HOST": "127.0.0.1",
        "N8N_PROTOCOL": "http", "WEBHOOK_URL": f"http://127.0.0.1:{port}/",
        "N8N_ENCRYPTION_KEY": "overture-bench-only-" + "0" * 12,
        "NODE_ENV": "production", "N8N_LOG_LEVEL": "warn",
        "DB_TYPE": "sqlite",
        # save every execution (that is what is counted), never prune during the run
        "EXECUTIONS_DATA_SAVE_ON_SUCCESS": "all", "EXECUTIONS_DATA_SAVE_ON_ERROR": "all",
        "EXECUTIONS_DATA_SAVE_ON_PROGRESS": "false",
        "EXECUTIONS_DATA_SAVE_MANUAL_EXECUTIONS": "false", "EXECUTIONS_DATA_PRUNE": "false",
        # no telemetry, no calls home: loopback only
        "N8N_DIAGNOSTICS_ENABLED": "false", "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
        "N8N_TEMPLATES_ENABLED": "false", "N8N_PERSONALIZATION_ENABLED": "false",
        "N8N_HIRING_BANNER_ENABLED": "false", "N8N_LICENSE_AUTO_RENEW_ENABLED": "false",
        "N8N_DIAGNOSTICS_CONFIG_FRONTEND": "", "N8N_DIAGNOSTICS_CONFIG_BACKEND": "",
        "EXTERNAL_FRONTEND_HOOKS_URLS": "", "N8N_COMMUNITY_PACKAGES_ENABLED": "false",
        "N8N_AI_ENABLED": "false", "N8N_SECURE_COOKIE": "false",
        # task runners: the default internal mode (Set nodes do not need one)
        "N8N_RUNNERS_MODE": "internal",
        "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "false",
    })
    return env


def cli(binary: str, main: str, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([binary, main, *args], env=env, capture_output=True, text=True,
                          timeout=CLI_TIMEOUT, cwd=env["N8N_USER_FOLDER"], check=False)
    if done.returncode != 0:
        raise n8n_install.Unavailable(f"`n8n {' '.join(args)}` failed ({done.returncode}):\n"
                                      f"{(done.stdout + done.stderr)[-1500:]}")
    return done.stdout


def template(binary: str, main: str, tmp: str) -> str:
    """The user folder with the workflows imported and active, made once per version."""
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(main))),
                          "..", "user-template")
    folder = os.path.normpath(folder)
    if os.path.exists(os.path.join(folder, ".complete")):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    env = n8n_env(binary, folder, free_port(), tmp)
    flows = [workflow(path, respond, i) for i, (path, respond) in enumerate(FLOWS.items())]
    with open(os.path.join(folder, "workflows.json"), "w") as f:
        json.dump(flows, f)
    cli(binary, main, env, "import:workflow", f"--input={folder}/workflows.json")
    for flow in flows:
        cli(binary, main, env, "publish:workflow", f"--id={flow['id']}")
    with open(os.path.join(folder, ".complete"), "w") as f:
        f.write("ok\n")
    return folder


class N8n:
    def __init__(self, bench: Bench, label: str, settings: dict[str, str]) -> None:
        self.bench, self.label = bench, label
        self.binary, _ = n8n_install.node()
        self.main = n8n_install.install()
        self.folder = os.path.join(bench.tmp, label.replace(" ", "-"))
        shutil.copytree(template(self.binary, self.main, bench.tmp), self.folder)
        self.port = free_port()
        self.env = {**n8n_env(self.binary, self.folder, self.port, bench.tmp), **settings}
        self.db = os.path.join(self.folder, ".n8n", "database.sqlite")

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def finished(self, flow: str) -> int:
        return int(self.query(  # type: ignore[arg-type]
            "SELECT count(*) FROM execution_entity WHERE workflowId = ? AND stoppedAt IS NOT NULL",
            flow)[0][0])

    def run(self) -> HookResult:
        out = HookResult(self.label)
        proc = self.bench.start([self.binary, self.main, "start"], self.label.replace(" ", "-"),
                                env=self.env,
                                cwd=self.folder)
        now_id, last_id = "benchflow0000000", "benchflow0000001"
        try:
            wait_until(lambda: get(self.port, "/healthz") == 200, START_TIMEOUT, "n8n to start",
                       poll=0.5, procs=(proc,))
            hook = f"/webhook/{next(iter(FLOWS))}"
            wait_until(lambda: load(self.port, [hook], 1, 1, 5).statuses.get(200, 0) == 1,
                       60, "n8n's webhook", poll=0.5, procs=(proc,))
            warm = load(self.port, [hook], 40, 4, 30).statuses.get(200, 0)  # warm-up
            wait_until(lambda: self.finished(now_id) >= warm, 60,
                       f"n8n warm-up ({warm} of 40 accepted)", procs=(proc,))
            base = self.finished(now_id)
            usage = procstat.Usage()
            usage.add("n8n", roots=[proc.pid])
            usage.start()
            sent = load(self.port, [hook], HOOK_REQUESTS, HOOK_CLIENTS, HOOK_SECONDS)
            accepted = sent.statuses.get(200, 0)
            try:
                wait_until(lambda: self.finished(now_id) >= base + accepted, PHASE_TIMEOUT,
                           "n8n executions to finish", poll=0.2, procs=(proc,))
            except RuntimeError:
                if not proc.alive():
                    raise
            out.cpu = usage.stop()
            start = datetime.fromtimestamp(sent.start, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            rows = self.query("SELECT status, stoppedAt FROM execution_entity WHERE "
                              "workflowId = ? AND startedAt >= ?", now_id, start[:23])
            ok = [r for r in rows if r[0] == "success"]
            out.requests, out.statuses = sent.count, dict(sent.statuses)
            out.send_seconds, out.load_cpu = sent.send_seconds, sent.cpu
            out.completed = len(ok)
            out.failed = len(rows) - len(ok)
            out.unfinished = max(0, accepted - len(rows))
            end = max((stamp(str(r[1])) for r in ok), default=sent.start)
            out.seconds = end - sent.start
            rate = out.runs_per_s
            if rate > 0:  # its own throughput, answered when done: send-to-finished
                paced = load(self.port, [f"/webhook/{list(FLOWS)[1]}"],
                             int(rate * PACED_SECONDS) + 1, HOOK_CLIENTS, PACED_SECONDS + 30,
                             rate=rate)
                lat = [r.done - r.sent for r in paced.requests if r.status == 200]
                out.paced.append(Paced(self.label, rate, paced.count, paced.late, lat))
                if paced.count != len(lat):
                    out.notes.append(f"paced: statuses {dict(paced.statuses)}")
            out.notes.append(f"executions saved in {self.db} (last-node workflow: "
                             f"{self.finished(last_id)})")
            time.sleep(IDLE_WAIT)
            out.memory = procstat.tree_memory(proc.pid, "n8n")
        except RuntimeError as e:
            raise RuntimeError(f"{e}\n{self.label}'s log ends:\n{proc.tail()}") from e
        finally:
            self.bench.stop(proc)
        note(f"{self.label}: {out.completed} executions in {out.seconds:.1f}s")
        return out


def stamp(text: str) -> float:
    """n8n's SQLite datetime (UTC, 'YYYY-MM-DD HH:MM:SS.SSS') as epoch seconds."""
    text = text.replace("T", " ").rstrip("Z")
    return datetime.strptime(text[:23].ljust(23, "0") if "." in text else text + ".000",
                             "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC).timestamp()


# n8n as it comes, and with the expression engine it had before 2.x made the isolated-vm
# one ("vm") the default: evaluating each execution's parameters in an isolate costs
# about three times the CPU of the rest of an execution here, so the legacy engine is
# n8n at its fastest, and what the targets should also hold against.
VARIANTS = [("n8n", {}), ("n8n legacy", {"N8N_EXPRESSION_ENGINE": "legacy"})]


def run_n8n(bench: Bench) -> list[HookResult]:
    """n8n's figures (as it comes first, then its fastest), or none (and a printed reason)
    where it cannot run here."""
    out = []
    for label, settings in VARIANTS:
        try:
            out.append(N8n(bench, label, settings).run())
        except (n8n_install.Unavailable, OSError, subprocess.SubprocessError) as e:
            print(f"... n8n side by side SKIPPED: {e}", flush=True)
            break
        except RuntimeError as e:  # it started but did not do what was asked in time
            print(f"... {label} FAILED, left out: {e}", flush=True)
    return out
