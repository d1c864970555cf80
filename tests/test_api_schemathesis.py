"""Schemathesis against the real server: every operation of the OpenAPI document,
a bounded number of generated requests each, as API keys of a seeded workspace.

It fails on any 5xx, and on a response whose status code, content type or body the
document does not describe. The requests go to a real HTTP server (werkzeug, one
thread per request) over the real PostgreSQL and Redis of the test session; the
schemathesis command line drives it from another process, as a pipeline would, and
reports each failure with the request that reproduces it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.live_server import loopback_only, serve
from tests.support import World, make_key

CHECKS = ("not_a_server_error", "response_schema_conformance", "status_code_conformance",
          "content_type_conformance", "unsupported_method")
# Per operation: the coverage phase's boundary and negative cases, then this many
# random ones. About 130 operations: a few minutes on one of two shared cores. One
# schemathesis worker: CPython 3.11's ast.parse, which hypothesis calls to describe
# filters, is not thread-safe (python/cpython#106905: "AST constructor recursion depth
# mismatch" under two worker threads).
FUZZ_EXAMPLES = 6


def _headers(token: str, tenant: str) -> str:
    return (f"{{ Authorization = {json.dumps('Bearer ' + token)}, "
            f"X-Overture-Tenant = {json.dumps(tenant)} }}")


def write_config(path: Path, world: World) -> Path:
    """Schemathesis feeds ids from earlier responses into later requests, so it finds
    the caller's own membership and key. Those operations act through other keys that
    cannot harm the main one: an admin cannot demote or remove an owner, and workspace
    B's key cannot revoke workspace A's."""
    _key, owner = make_key(world, "a_owner", "a")
    a, b = world.tid("a"), world.tid("b")
    path.write_text(f"""
seed = 12
headers = {_headers(owner, a)}
request-timeout = 30
workers = 1

[generation]
no-shrink = true
database = "none"

[phases.examples]
enabled = false
[phases.stateful]
enabled = false
[phases.fuzzing.generation]
max-examples = {FUZZ_EXAMPLES}

[[operations]]
include-path = "/api/v1/members/{{member_id}}"
headers = {_headers(world.keys["a_admin"][1], a)}

[[operations]]
include-path = "/api/v1/api-keys/{{key_id}}"
include-method = "DELETE"
headers = {_headers(world.keys["b_admin"][1], b)}
""")
    return path


def schemathesis_run(base: str, config: Path) -> subprocess.CompletedProcess[str]:
    # Run in the config's directory: schemathesis keeps a cache where it runs.
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config),
               "--no-color", "run", f"{base}/api/v1/openapi.json",
               "--checks", ",".join(CHECKS), "--phases", "coverage,fuzzing",
               "--warnings", "off"]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, check=False,
                          cwd=config.parent)


def test_every_operation_answers_as_documented(app: Any, world: World,
                                               tmp_path: Path) -> None:
    config = write_config(tmp_path / "schemathesis.toml", world)
    with loopback_only(), serve(app) as base:
        result = schemathesis_run(base, config)
    print(result.stdout[-3000:])  # the summary, in the log of a passing run too
    assert result.returncode == 0, result.stdout[-30000:] + result.stderr[-5000:]
