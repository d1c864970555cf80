"""Test mode: a run that sends nothing outside and bills nothing (issue 18).

A test run (`runs.mode = 'test'`) executes its workflow version on the same engine as
a live run, with these differences:

- **Declared mocks** (`mocks`, per step id): `{"output": ...}` completes the step with
  that output, `{"error": {"code": ..., "message": ...}}` fails it; any step type (an
  approval mocked as `{"output": {"decision": "approved"}}` needs nobody).
- **Connector actions that change the world** (a connector action declared with
  `side_effects=True`, and any action not declared by a connector) never reach the
  network. In order, they answer with: the step's declared mock; the per-action mock
  (`action_mocks`, by `<connector>.<action>`); the recorded output of the same step (same
  id and iteration path) in the source run (`source_run_id`: a replay's run, or one the
  caller names); else the synthetic output
  `{"mocked": true, "action": ..., "note": "mocked: no response declared",
  "would_send": <the step's rendered input>}`.
  **Read-only actions** are called (unbilled) unless mocked, or unless `mock_reads` is
  on: then they answer as above. An agent's action tools follow the same rules (by
  `action_mocks`; no recorded outputs exist for them); its `remember` tool keeps nothing.
- **Models**: `models` (per step id, a list of scripted turns, see
  llm/scripted_provider.py) answers every agent invocation of that step. Otherwise an
  agent on the `local` or `scripted` provider runs as configured (neither leaves the
  machine), and an agent on a network model is answered by the offline `local`
  provider, unless the caller set `allow_live_models` (then its own model is called,
  with its own credential; still unbilled by us). Token counts are kept on the run and
  its steps, priced at the agent's configured model as an estimate.
- **Agent versions**: `agent_versions` (agent name -> agent version id) replaces what
  the workflow version pinned, for this run only.
- **Nothing is billed or sent**: no usage events (so no roll-ups, no Stripe meter
  events), no budget holds or quota checks, no outbound events, no mail. Test runs are
  audited (`run.started` with `mode: test`), shown with a "test" mark in the API, the
  run list and the run viewer, and left out of the overview, performance and failure
  analytics.
- Child runs (subworkflows) of a test run are test runs, with its `action_mocks`,
  `mock_reads` and `allow_live_models`.

`start.py` starts test runs and replays (a run's input against another workflow or
agent version), `diff.py` compares a replay with its source run step by step,
`compare.py` runs an A/B comparison of two agent versions over recorded runs.
"""
