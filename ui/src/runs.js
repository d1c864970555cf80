// A run on the graph: the one way the builder's test run and the run viewer learn each
// step's status (polling GET /runs/<id> until the run ends) and name it. The nodes draw
// it through `stepNode` (nodes.jsx).
import { useEffect, useState } from "react";

export const FINISHED = new Set(["succeeded", "failed", "cancelled", "timed_out"]);
// When one step ran more than once (loop iterations), the node shows the most telling.
const RANK = ["failed", "running", "waiting", "queued", "timed_out", "succeeded", "skipped", "cancelled"];

export const STATUS_LABEL = {
  queued: "Queued", running: "Running", waiting: "Waiting", succeeded: "Succeeded", failed: "Failed",
  cancelled: "Cancelled", skipped: "Reused", timed_out: "Timed out", pending: "Not reached",
};

// step id -> status; a step with no step run yet is "pending".
export function stepStatuses(run) {
  const by = {};
  for (const s of run?.steps || []) {
    const was = by[s.step_id];
    if (!was || RANK.indexOf(s.status) < RANK.indexOf(was)) by[s.step_id] = s.status;
  }
  return by;
}

// GET /runs/<id> every `everyMs` until the run finishes (or the id changes); a failed read
// is said and tried again.
export function useRunPoll(api, runId, everyMs) {
  const [run, setRun] = useState(null);
  const [error, setError] = useState("");
  useEffect(() => {
    setRun(null);
    if (!runId) return undefined;
    let gone = false;
    let timer = null;
    const tick = async () => {
      try {
        const found = await api("GET", `/runs/${runId}`);
        if (gone) return;
        setRun(found);
        setError("");
        if (FINISHED.has(found.status)) return;
      } catch (err) {
        if (gone) return;
        setError(err.message);
      }
      timer = setTimeout(tick, everyMs);
    };
    tick();
    return () => { gone = true; clearTimeout(timer); };
  }, [api, runId, everyMs]);
  return { run, error };
}
