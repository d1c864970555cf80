// A test run from the editor: the sample input (remembered for the session), starting a
// run of the live version (publishing first if asked), and the run polled every second
// so that its steps' statuses can be drawn on the nodes.
import { useMemo, useState } from "react";
import { sampleInput } from "./diff.js";
import { stepStatuses, useRunPoll } from "./runs.js";

const POLL_MS = 1000;

export function useTestRun({ api, workflowId, publish, setBusy, announce, onStarted }) {
  const [open, setOpen] = useState(false);
  const [runId, setRunId] = useState(null);
  const { run, error } = useRunPoll(api, runId, POLL_MS);
  const statuses = useMemo(() => (runId ? stepStatuses(run) : null), [run, runId]);
  const sampleKey = `overture.builder.sample.${workflowId}`;

  async function start(input, text, publishFirst) {
    if (publishFirst) {
      setOpen(false); // a refused publish shows its errors on the nodes
      if (!(await publish())) return;
    }
    setBusy(true);
    try {
      const started = await api("POST", `/workflows/${workflowId}/runs`, { input });
      try { sessionStorage.setItem(sampleKey, text); } catch { /* storage off: fine */ }
      setOpen(false);
      onStarted();
      setRunId(started.id);
      announce(""); // the run strip says it, live
    } catch (err) {
      announce(`Could not start the test run: ${err.message}`, "error");
    } finally {
      setBusy(false);
    }
  }

  // The input last used in this session, else one made of the fields the steps read.
  function sample(definition) {
    try {
      const last = sessionStorage.getItem(sampleKey);
      if (last) return last;
    } catch { /* storage off */ }
    return JSON.stringify(sampleInput(definition), null, 2);
  }

  return { open, setOpen, runId, dismiss: () => setRunId(null), run, error, statuses, start, sample };
}
