// The builder's top bar: the workflow's name and state, undo/redo/save, history, test run
// and publish (each shown only to a role that may use it).
export function Toolbar({ workflow, dirty, canEdit, canRun, canPublish, canUndo, canRedo, busy,
                          historyOpen, historyButton, onUndo, onRedo, onSave, onHistory, onTestRun,
                          onPublish, backUrl }) {
  return (
    <div className="ovb-top">
      <a className="ovb-back" href={backUrl}>‹ Workflows</a>
      <div className="ovb-title">
        <h1>{workflow?.name}</h1>
        <span className={dirty ? "ovb-pill is-warn" : "ovb-pill"}>{dirty ? "Unsaved changes" : "Draft saved"}</span>
        <span className="ovb-pill is-muted">
          {workflow?.current_version ? `Live: v${workflow.current_version}` : "Never published"}
        </span>
      </div>
      <div className="ovb-actions">
        {!canEdit && <span className="ovb-pill is-muted">Read only: your role can view this workflow</span>}
        {canEdit && (
          <>
            <button type="button" className="ovb-icon-btn" onClick={onUndo} disabled={!canUndo}
                    aria-label="Undo" title="Undo (Ctrl+Z)">↶</button>
            <button type="button" className="ovb-icon-btn" onClick={onRedo} disabled={!canRedo}
                    aria-label="Redo" title="Redo (Ctrl+Shift+Z)">↷</button>
            <button type="button" className="ovb-btn" onClick={onSave} disabled={busy || !dirty}
                    title="Save draft (Ctrl+S)">Save draft</button>
          </>
        )}
        <button type="button" className="ovb-btn" aria-pressed={historyOpen} ref={historyButton}
                onClick={onHistory}>
          History
        </button>
        {canRun && (
          <button type="button" className="ovb-btn" onClick={onTestRun} disabled={busy}>
            Test run
          </button>
        )}
        {canPublish && (
          <button type="button" className="ovb-btn ovb-btn--primary" onClick={onPublish} disabled={busy}>
            Publish
          </button>
        )}
      </div>
    </div>
  );
}
