// Version history: the published versions (number, who, when), a diff of any version
// against the draft or another version, and the two ways back: restore a version into
// the draft (to edit and publish again) or make it the live version (the API's rollback).
import { useCallback, useEffect, useMemo, useState } from "react";
import { typeInfo } from "./catalog.js";
import { diffDefinitions, shown } from "./diff.js";

const DRAFT = "draft";

// The published versions, and who published them (by name, from the members list).
export function useVersions(api, workflowId) {
  const [versions, setVersions] = useState([]);
  const [people, setPeople] = useState({});
  const reloadVersions = useCallback(() => {
    api("GET", `/workflows/${workflowId}/versions`).then((list) => setVersions(list?.items || []))
      .catch(() => setVersions([]));
  }, [api, workflowId]);
  useEffect(() => {
    reloadVersions();
    api("GET", "/members?limit=200").then((page) => setPeople(Object.fromEntries(
      (page?.items || []).map((m) => [m.user.id, m.user.name || m.user.email]))))
      .catch(() => setPeople({}));
  }, [api, reloadVersions]);
  return { versions, people, reloadVersions };
}

export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const minutes = Math.round((Date.now() - date.getTime()) / 60000);
  const absolute = date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  if (minutes < 1) return `just now · ${absolute}`;
  if (minutes < 60) return `${minutes} min ago · ${absolute}`;
  return absolute;
}

function StepLabel({ step }) {
  return (
    <>
      <code>{step.id}</code> <span className="ovb-muted">{step.name || typeInfo(step.type).label}</span>
    </>
  );
}

function Fields({ fields }) {
  return (
    <dl className="ovb-diff__fields">
      {fields.map((f) => (
        <div key={f.path} className="ovb-diff__field">
          <dt><code>{f.path}</code></dt>
          <dd>
            <del className="ovb-diff__before">{shown(f.before)}</del>
            <span aria-hidden="true"> → </span><span className="ovb-sr"> became </span>
            <ins className="ovb-diff__after">{shown(f.after)}</ins>
          </dd>
        </div>
      ))}
    </dl>
  );
}

export function Diff({ before, after }) {
  const diff = useMemo(() => diffDefinitions(before, after), [before, after]);
  if (diff.same) return <p className="ovb-muted ovb-diff__same">No differences.</p>;
  const counts = [`${diff.added.length} added`, `${diff.removed.length} removed`, `${diff.changed.length} changed`];
  return (
    <div className="ovb-diff">
      <p className="ovb-diff__counts">{counts.join(" · ")}</p>
      {diff.added.length > 0 && (
        <section aria-label="Steps added">
          <h4 className="ovb-diff__head is-added">Added</h4>
          <ul>{diff.added.map((s) => <li key={s.id} className="ovb-diff__step is-added"><StepLabel step={s} /></li>)}</ul>
        </section>
      )}
      {diff.removed.length > 0 && (
        <section aria-label="Steps removed">
          <h4 className="ovb-diff__head is-removed">Removed</h4>
          <ul>{diff.removed.map((s) => <li key={s.id} className="ovb-diff__step is-removed"><StepLabel step={s} /></li>)}</ul>
        </section>
      )}
      {diff.changed.length > 0 && (
        <section aria-label="Steps changed">
          <h4 className="ovb-diff__head is-changed">Changed</h4>
          <ul>
            {diff.changed.map((c) => (
              <li key={c.id} className="ovb-diff__step is-changed">
                <StepLabel step={c.step} />
                <Fields fields={c.fields} />
              </li>
            ))}
          </ul>
        </section>
      )}
      {diff.workflow.length > 0 && (
        <section aria-label="Workflow settings changed">
          <h4 className="ovb-diff__head is-changed">Workflow settings</h4>
          <Fields fields={diff.workflow} />
        </section>
      )}
    </div>
  );
}

export function History({ versions, draft, live, people, canEdit, canPublish, busy, focusRef,
                          onRestore, onMakeLive, onClose, onMarks }) {
  const newest = versions.length ? versions[versions.length - 1].number : null;
  const [chosen, setPicked] = useState(null); // none chosen: the newest, even one published after opening
  const picked = chosen ?? newest;
  const [against, setAgainst] = useState(DRAFT);
  const version = versions.find((v) => v.number === picked) || null;
  const other = against === DRAFT ? draft : versions.find((v) => String(v.number) === against)?.definition;
  const otherLabel = against === DRAFT ? "the draft" : `v${against}`;
  // Against the draft, the canvas marks the steps added or changed since that version.
  useEffect(() => {
    if (!version || against !== DRAFT) {
      onMarks({});
      return;
    }
    const diff = diffDefinitions(version.definition, draft);
    onMarks(Object.fromEntries([...diff.added.map((s) => [s.id, "added"]),
                                ...diff.changed.map((c) => [c.id, "changed"])]));
  }, [version, against, draft, onMarks]);
  useEffect(() => () => onMarks({}), [onMarks]);
  const byWhom = (id) => (id ? people[id] || "a former member" : "the platform");

  return (
    <aside className="ovb-inspector ovb-history" aria-labelledby="ovb-history-title">
      <div className="ovb-inspector__head">
        <div>
          <p className="ovb-inspector__type">Workflow</p>
          <h2 id="ovb-history-title" tabIndex={-1} ref={focusRef}>Version history</h2>
        </div>
        <button type="button" className="ovb-icon-btn" onClick={onClose} aria-label="Close version history">×</button>
      </div>
      <div className="ovb-inspector__scroll">
        {versions.length === 0 ? (
          <p className="ovb-muted ovb-history__empty">
            Nothing published yet. Each publish freezes the draft as a numbered version, listed here.
          </p>
        ) : (
          <>
            <ol className="ovb-versions" reversed aria-label="Published versions">
              {[...versions].reverse().map((v) => (
                <li key={v.number}>
                  <button type="button" className="ovb-versions__item" aria-pressed={v.number === picked}
                          onClick={() => setPicked(v.number)}>
                    <span className="ovb-versions__num">v{v.number}</span>
                    <span className="ovb-versions__meta">
                      <span>{byWhom(v.published_by_id)}</span>
                      <span className="ovb-muted">{when(v.created_at)}</span>
                    </span>
                    {v.number === live && <span className="ovb-pill">Live</span>}
                  </button>
                </li>
              ))}
            </ol>
            {version && (
              <section className="ovb-history__compare" aria-labelledby="ovb-compare-title">
                <h3 id="ovb-compare-title">Changes from v{version.number} to {otherLabel}</h3>
                <label className="ovb-field__label" htmlFor="ovb-compare-with">Compare v{version.number} with</label>
                <select id="ovb-compare-with" className="ovb-input" value={against}
                        onChange={(e) => setAgainst(e.target.value)}>
                  <option value={DRAFT}>The draft (what the canvas shows)</option>
                  {versions.filter((v) => v.number !== version.number).map((v) => (
                    <option key={v.number} value={String(v.number)}>v{v.number}</option>
                  ))}
                </select>
                <Diff before={version.definition} after={other} />
                <div className="ovb-history__actions">
                  {canEdit && (
                    <button type="button" className="ovb-btn" disabled={busy} onClick={() => onRestore(version)}>
                      Restore v{version.number} to the draft
                    </button>
                  )}
                  {canPublish && version.number !== live && (
                    <button type="button" className="ovb-btn" disabled={busy} onClick={() => onMakeLive(version)}>
                      Make v{version.number} live
                    </button>
                  )}
                </div>
                <p className="ovb-muted ovb-field__hint">
                  Restoring puts this version&rsquo;s steps in the draft (undo with <kbd>Ctrl</kbd>+<kbd>Z</kbd>);
                  publish to run them. Making it live switches new runs to it now; running ones keep theirs.
                </p>
              </section>
            )}
          </>
        )}
      </div>
    </aside>
  );
}
