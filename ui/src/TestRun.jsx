// A test run from the editor: a dialog for the sample input (JSON, checked as it is
// typed), and a summary strip of the run that links to the run viewer (the steps'
// statuses are drawn on their nodes, see runs.js). Runs always use the live (published)
// version: the API starts runs of the current version only.
import { useEffect, useRef, useState } from "react";
import { FINISHED, STATUS_LABEL } from "./runs.js";

function seconds(run) {
  if (!run?.started_at) return "";
  const end = run.finished_at ? new Date(run.finished_at) : new Date();
  const s = Math.max(0, (end - new Date(run.started_at)) / 1000);
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function errorText(error) {
  if (!error) return "";
  if (typeof error === "string") return error;
  return error.message || error.detail || JSON.stringify(error);
}

export function RunSummary({ run, runId, pollError, viewerUrl, onDismiss }) {
  const status = run?.status || "queued";
  const steps = run?.steps || [];
  const done = steps.filter((s) => FINISHED.has(s.status) || s.status === "skipped").length;
  const facts = [
    `${done} of ${steps.length} step run${steps.length === 1 ? "" : "s"} finished`,
    seconds(run),
    run?.version ? `v${run.version}` : "",
    run && Number(run.tokens) ? `${run.tokens} tokens` : "",
  ].filter(Boolean);
  return (
    <div className={`ovb-run is-${status}`} role="region" aria-label="Test run">
      <div className="ovb-run__line">
        <span className={`ovb-run__badge is-${status}`} aria-live="polite">
          Test run {(STATUS_LABEL[status] || status).toLowerCase()}
        </span>
        <span className="ovb-run__facts">{facts.join(" · ")}</span>
        <a className="ovb-run__link" href={`${viewerUrl}${runId}`}>Open in the run viewer</a>
        <button type="button" className="ovb-icon-btn" onClick={onDismiss}
                aria-label="Dismiss the test run">×</button>
      </div>
      {status === "failed" && run?.error && <p className="ovb-run__error">{errorText(run.error)}</p>}
      {pollError && <p className="ovb-run__error">Could not refresh the run: {pollError}</p>}
    </div>
  );
}

export function TestRunDialog({ open, initial, live, unpublished, canPublish, busy, onStart, onClose }) {
  const ref = useRef(null);
  const [text, setText] = useState(initial);
  const [problem, setProblem] = useState("");

  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) {
      setText(initial);
      setProblem("");
      dialog.showModal(); // focus moves into it; Escape closes it
    } else if (!open && dialog.open) {
      dialog.close();
    }
  }, [open, initial]);

  const check = (value) => {
    try {
      JSON.parse(value);
      return "";
    } catch (err) {
      return `Not valid JSON: ${err.message}`;
    }
  };

  const submit = (e, publishFirst = false) => {
    e.preventDefault();
    const found = check(text);
    setProblem(found);
    if (!found) onStart(JSON.parse(text), text, publishFirst);
  };
  const mayPublish = canPublish && (unpublished || !live);

  return (
    <dialog ref={ref} className="ovb-dialog" aria-labelledby="ovb-run-title" onClose={onClose}>
      <form method="dialog" onSubmit={submit}>
        <h2 id="ovb-run-title">Test run</h2>
        {live ? (
          <p className="ovb-dialog__note">
            Runs the live version, v{live}, with this input.
            {unpublished && (
              <strong> The draft has changes that are not published: publish first to test them{
                canPublish ? " (“Publish, then run” does both)" : ""}.</strong>
            )}
          </p>
        ) : (
          <p className="ovb-dialog__note is-warn" role="alert">
            Nothing is published yet, and runs use the live version: {canPublish
              ? "“Publish, then run” publishes the draft first."
              : "someone who may publish has to publish the workflow first."}
          </p>
        )}
        <div className={problem ? "ovb-field has-error" : "ovb-field"}>
          <label className="ovb-field__label" htmlFor="ovb-run-input">Sample input (JSON)</label>
          <textarea id="ovb-run-input" className="ovb-input is-mono" rows={10} value={text} spellCheck={false}
                    aria-invalid={problem ? "true" : "false"}
                    aria-describedby={problem ? "ovb-run-input-error" : "ovb-run-input-hint"}
                    onChange={(e) => { setText(e.target.value); if (problem) setProblem(check(e.target.value)); }}
                    onBlur={() => setProblem(check(text))} />
          {problem
            ? <p id="ovb-run-input-error" className="ovb-field__error">{problem}</p>
            : <p id="ovb-run-input-hint" className="ovb-field__hint">Prefilled with the input fields the steps read.</p>}
        </div>
        <div className="ovb-dialog__actions">
          <button type="button" className="ovb-btn" onClick={onClose}>Cancel</button>
          {mayPublish && (
            <button type="button" className={live ? "ovb-btn" : "ovb-btn ovb-btn--primary"} disabled={busy}
                    onClick={(e) => submit(e, true)}>Publish, then run</button>
          )}
          {live && <button type="submit" className="ovb-btn ovb-btn--primary" disabled={busy}>Start test run</button>}
        </div>
      </form>
    </dialog>
  );
}
