// The visual builder: palette, canvas, side panel. Its state is the definition (with
// undo/redo history); the canvas and the forms are views of it.
import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from "react";
import {
  Background, Controls, MiniMap, ReactFlow, ReactFlowProvider, applyNodeChanges, useReactFlow,
} from "@xyflow/react";
import { flushSync } from "react-dom";
import { ApiError } from "./api.js";
import { typeInfo } from "./catalog.js";
import {
  addBranch, addStep, allIds, connect, deleteStep, disconnect, findStep, freshStep, renameStep, setField,
  stepOfErrorPath, walk,
} from "./definition.js";
import { diffDefinitions, sampleInput } from "./diff.js";
import { toGraph } from "./graph.js";
import { History, useVersions } from "./History.jsx";
import { Inspector } from "./Inspector.jsx";
import { StepIcon } from "./icons.jsx";
import { nodeTypes } from "./nodes.jsx";
import { Palette } from "./Palette.jsx";
import { RunSummary, STATUS_LABEL, TestRunDialog, stepStatuses, useRunPoll } from "./TestRun.jsx";

const LIMIT = 200;

function history(state, action) {
  switch (action.type) {
    case "load":
      return { past: [], present: action.definition, future: [] };
    case "change":
      if (JSON.stringify(action.definition) === JSON.stringify(state.present)) return state;
      return { past: [...state.past, state.present].slice(-LIMIT), present: action.definition, future: [] };
    case "undo":
      if (!state.past.length) return state;
      return { past: state.past.slice(0, -1), present: state.past.at(-1), future: [state.present, ...state.future] };
    case "redo":
      if (!state.future.length) return state;
      return { past: [...state.past, state.present], present: state.future[0], future: state.future.slice(1) };
    default:
      return state;
  }
}

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable
    || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

function Canvas({ config, api }) {
  const { workflowId, canEdit, canPublish, canRun, backUrl, runsUrl } = config;
  const [meta, setMeta] = useState(null); // step type -> {schema, expressions, templates, blocks, targets}
  const [hist, dispatch] = useReducer(history, { past: [], present: null, future: [] });
  const definition = hist.present;
  const current = useRef(null);
  current.current = definition;
  const [workflow, setWorkflow] = useState(null);
  const [saved, setSaved] = useState("");
  const [selected, setSelected] = useState(null);
  const [edgeSelected, setEdgeSelected] = useState(null);
  const [errors, setErrors] = useState([]); // from the last publish: [{field, message, step}]
  const [status, setStatus] = useState({ kind: "info", text: "Loading…" });
  const [busy, setBusy] = useState(false);
  const [actions, setActions] = useState([]);
  const [agents, setAgents] = useState([]);
  const [connections, setConnections] = useState([]);
  const [rfNodes, setRfNodes] = useState([]);
  const headingRef = useRef(null);
  const saveRef = useRef(() => {});
  const focusPanel = useRef(false);
  const flow = useReactFlow();
  const { versions, people, reloadVersions } = useVersions(api, workflowId);
  const [panel, setPanel] = useState(null); // "history" replaces the side panel while open
  const [marks, setMarks] = useState({}); // step id -> "added" | "changed", from the history's diff
  const historyRef = useRef(null);
  const historyButton = useRef(null);
  const [runOpen, setRunOpen] = useState(false);
  const [runId, setRunId] = useState(null);
  const { run, error: pollError } = useRunPoll(api, runId);
  const runStatus = useMemo(() => (runId ? stepStatuses(run) : {}), [run, runId]);

  const change = useCallback((next) => dispatch({ type: "change", definition: next }), []);

  useEffect(() => {
    let gone = false;
    Promise.all([api("GET", `/workflows/${workflowId}`), api("GET", "/step-types")]).then(([wf, types]) => {
      if (gone) return;
      setMeta(Object.fromEntries((types?.items || []).map((t) => [t.type, t])));
      const def = wf.definition && typeof wf.definition === "object" ? wf.definition : { steps: [] };
      setWorkflow(wf);
      dispatch({ type: "load", definition: def });
      setSaved(JSON.stringify(def));
      setStatus({ kind: "info", text: "" });
    }).catch((err) => setStatus({ kind: "error", text: `Could not load the workflow: ${err.message}` }));
    api("GET", "/connectors").then((list) => {
      if (gone) return;
      setActions((list?.items || []).flatMap((c) => (c.actions || []).map((a) => ({
        ...a, key: `${c.key}.${a.key}`, name: `${c.name}: ${a.name || a.key}`, connector: c.name,
      }))));
    }).catch(() => setActions([]));
    api("GET", "/agents?limit=200").then((page) => {
      if (!gone) setAgents((page?.items || []).map((a) => a.name));
    }).catch(() => setAgents([]));
    // An action step names its connection by id: offer the workspace's, labelled by name.
    api("GET", "/connections?limit=200").then((page) => {
      if (!gone) setConnections((page?.items || []).map((c) => ({ id: c.id, name: `${c.name} (${c.connector_key})` })));
    }).catch(() => setConnections([]));
    return () => { gone = true; };
  }, [api, workflowId]);

  const dirty = definition !== null && JSON.stringify(definition) !== saved;
  const errorsByStep = useMemo(() => {
    const by = {};
    for (const e of errors) if (e.step) (by[e.step] ||= []).push(e);
    return by;
  }, [errors]);
  const graph = useMemo(() => (definition && meta ? toGraph(definition, meta) : { nodes: [], edges: [] }),
                        [definition, meta]);

  useEffect(() => {
    setRfNodes(graph.nodes.map((n) => {
      if (n.type !== "step") return n;
      const errs = errorsByStep[n.id] || [];
      const info = typeInfo(n.data.step.type);
      const ran = runStatus[n.id];
      return { ...n, selected: n.id === selected, data: { ...n.data, errors: errs, run: ran, mark: marks[n.id] },
               ariaLabel: `${info.label} step ${n.data.step.name || n.id}${errs.length ? `, ${errs.length} problem${errs.length > 1 ? "s" : ""}` : ""}${
                 ran ? `, test run: ${STATUS_LABEL[ran] || ran}` : ""}` };
    }));
  }, [graph, errorsByStep, selected, runStatus, marks]);

  const stepCount = graph.nodes.length;
  useEffect(() => {
    if (stepCount) requestAnimationFrame(() => flow.fitView({ padding: 0.25, maxZoom: 1.1, duration: 200 }));
  }, [stepCount, flow]);

  const entry = selected && definition ? findStep(definition, selected) : null;
  useEffect(() => {
    if (selected && definition && !findStep(definition, selected)) setSelected(null);
  }, [definition, selected]);
  useEffect(() => { // picking a step shows its panel in place of the history
    if (selected) setPanel(null);
  }, [selected]);
  useEffect(() => {
    if (panel === "history") historyRef.current?.focus();
  }, [panel]);
  useEffect(() => {
    if (entry && focusPanel.current) {
      focusPanel.current = false;
      headingRef.current?.focus();
    }
  });

  const announce = (text, kind = "info") => setStatus({ kind, text });

  const onAdd = useCallback((type, extra) => {
    const def = current.current;
    if (!def) return;
    const step = freshStep(def, type, extra);
    change(addStep(def, step, selected, meta));
    focusPanel.current = true;
    setSelected(step.id);
    announce(`Added ${typeInfo(type).label} step ${step.id}${selected ? ` after ${selected}` : ""}.`);
  }, [change, selected, meta]);

  const onDelete = useCallback((id) => {
    const def = current.current;
    if (!def || !id) return;
    change(deleteStep(def, id, meta));
    setSelected(null);
    announce(`Deleted step ${id}.`);
  }, [change, meta]);

  const undo = () => dispatch({ type: "undo" });
  const redo = () => dispatch({ type: "redo" });

  useEffect(() => {
    const onKey = (e) => {
      const mod = e.ctrlKey || e.metaKey;
      if (mod && e.key === "s" && canEdit) {
        e.preventDefault();
        // Leaving the field commits what was typed; flushSync renders it before saving.
        if (e.target instanceof HTMLElement) flushSync(() => e.target.blur());
        saveRef.current();
      } else if (mod && (e.key === "z" || e.key === "Z") && !typing(e.target)) {
        e.preventDefault();
        dispatch({ type: e.shiftKey ? "redo" : "undo" });
      } else if (mod && e.key === "y" && !typing(e.target)) {
        e.preventDefault();
        dispatch({ type: "redo" });
      } else if ((e.key === "Delete" || e.key === "Backspace") && canEdit && !typing(e.target)
                 && e.target.closest?.(".ovb-canvas")) {
        const edge = edgeSelected && graph.edges.find((x) => x.id === edgeSelected);
        if (edge?.data) {
          e.preventDefault();
          change(disconnect(current.current, edge.data.step, edge.data.field, edge.data.item));
          setEdgeSelected(null);
          announce(`Removed the connection from ${edge.source} to ${edge.target}.`);
        } else if (selected) {
          e.preventDefault();
          onDelete(selected);
        }
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [canEdit, selected, onDelete, edgeSelected, graph, change]);

  const onNodesChange = useCallback((changes) => {
    const picked = changes.filter((c) => c.type === "select");
    if (picked.length) {
      const on = picked.find((c) => c.selected);
      if (on) setSelected(on.id.startsWith("block:") ? null : on.id);
      else if (picked.some((c) => c.id === selected)) setSelected(null);
    }
    setRfNodes((ns) => applyNodeChanges(changes.filter((c) => c.type !== "select" && c.type !== "remove"), ns));
  }, [selected]);

  const onEdgesChange = useCallback((changes) => {
    const on = changes.find((c) => c.type === "select" && c.selected);
    if (on) setEdgeSelected(on.id);
    else if (changes.some((c) => c.type === "select" && c.id === edgeSelected)) setEdgeSelected(null);
  }, [edgeSelected]);
  const edges = useMemo(() => graph.edges.map((e) => (e.id === edgeSelected ? { ...e, selected: true } : e)),
                        [graph, edgeSelected]);

  const onConnect = useCallback(({ source, target }) => {
    const def = current.current;
    const a = findStep(def, source);
    const b = findStep(def, target);
    if (!a || !b) return;
    if (a.blockKey !== b.blockKey) {
      announce("Steps connect within one block (a branch or a loop body connects to its own steps).", "error");
      return;
    }
    change(connect(def, source, target, meta));
    announce(`Connected ${source} to ${target}.`);
  }, [change, meta]);

  // A page left with unsaved changes asks first.
  useEffect(() => {
    if (!dirty) return undefined;
    const warn = (e) => { e.preventDefault(); e.returnValue = ""; };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [dirty]);

  async function save() {
    const def = current.current;
    setBusy(true);
    try {
      const wf = await api("PATCH", `/workflows/${workflowId}`, { definition: def });
      setWorkflow(wf);
      setSaved(JSON.stringify(def));
      announce("Draft saved.", "success");
      return true;
    } catch (err) {
      announce(`Could not save the draft: ${err.message}`, "error");
      return false;
    } finally {
      setBusy(false);
    }
  }

  async function publish() {
    if (dirty && !(await save())) return false;
    setBusy(true);
    try {
      const version = await api("POST", `/workflows/${workflowId}/publish`);
      setErrors([]);
      setWorkflow((wf) => ({ ...wf, current_version: version.number }));
      reloadVersions();
      announce(`Published version ${version.number}.`, "success");
      return true;
    } catch (err) {
      if (err instanceof ApiError && Array.isArray(err.problem.errors)) {
        const def = current.current;
        const found = err.problem.errors.map((e) => ({ ...e, step: stepOfErrorPath(def, e.field) }));
        setErrors(found);
        const first = found.find((e) => e.step);
        if (first) setSelected(first.step);
        announce(`Not published: ${found.length} problem${found.length === 1 ? "" : "s"} to fix${
          first ? "; they are marked on the steps" : ""}.`, "error");
      } else {
        announce(`Not published: ${err.message}`, "error");
      }
      return false;
    } finally {
      setBusy(false);
    }
  }

  async function restore(version) {
    current.current = version.definition; // what save() sends, before the next render
    change(version.definition);
    if (await save()) announce(`Version ${version.number} restored to the draft: publish it to make it live.`, "success");
  }

  async function makeLive(version) {
    setBusy(true);
    try {
      await api("POST", `/workflows/${workflowId}/rollback`, { version: version.number });
      setWorkflow((wf) => ({ ...wf, current_version: version.number }));
      announce(`Version ${version.number} is live: new runs use it.`, "success");
    } catch (err) {
      announce(`Could not make version ${version.number} live: ${err.message}`, "error");
    } finally {
      setBusy(false);
    }
  }

  const sampleKey = `overture.builder.sample.${workflowId}`;
  async function startRun(input, text, publishFirst) {
    if (publishFirst) {
      setRunOpen(false); // a refused publish shows its errors on the nodes
      if (!(await publish())) return;
    }
    setBusy(true);
    try {
      const started = await api("POST", `/workflows/${workflowId}/runs`, { input });
      try { sessionStorage.setItem(sampleKey, text); } catch { /* storage off: fine */ }
      setRunOpen(false);
      setSelected(null);
      setRunId(started.id);
      announce(""); // the run strip says it, live
    } catch (err) {
      announce(`Could not start the test run: ${err.message}`, "error");
    } finally {
      setBusy(false);
    }
  }

  saveRef.current = () => {
    if (JSON.stringify(current.current) !== saved) save();
  };

  if (!definition || !meta) {
    return <div className="ovb-loading" role="status">{status.text || "Loading…"}</div>;
  }
  const steps = walk(definition);
  const unplaced = errors.filter((e) => !e.step);
  const live = workflow?.current_version || null;
  const liveDefinition = versions.find((v) => v.number === live)?.definition;
  const unpublished = Boolean(liveDefinition) && !diffDefinitions(liveDefinition, definition).same;
  let sample = JSON.stringify(sampleInput(liveDefinition || definition), null, 2);
  try { sample = sessionStorage.getItem(sampleKey) || sample; } catch { /* storage off */ }
  const afterLabel = selected ? `Adds after ${selected}` : steps.length ? "Adds at the end" : "Adds the first step";

  return (
    <div className="ovb-app">
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
              <button type="button" className="ovb-icon-btn" onClick={undo} disabled={!hist.past.length}
                      aria-label="Undo" title="Undo (Ctrl+Z)">↶</button>
              <button type="button" className="ovb-icon-btn" onClick={redo} disabled={!hist.future.length}
                      aria-label="Redo" title="Redo (Ctrl+Shift+Z)">↷</button>
              <button type="button" className="ovb-btn" onClick={save} disabled={busy || !dirty}
                      title="Save draft (Ctrl+S)">Save draft</button>
            </>
          )}
          <button type="button" className="ovb-btn" aria-pressed={panel === "history"} ref={historyButton}
                  onClick={() => { setSelected(null); setPanel(panel === "history" ? null : "history"); }}>
            History
          </button>
          {canRun && (
            <button type="button" className="ovb-btn" onClick={() => setRunOpen(true)} disabled={busy}>
              Test run
            </button>
          )}
          {canPublish && (
            <button type="button" className="ovb-btn ovb-btn--primary" onClick={publish} disabled={busy}>
              Publish
            </button>
          )}
        </div>
      </div>
      <datalist id="ovb-agent-names">{agents.map((name) => <option key={name} value={name} />)}</datalist>
      <datalist id="ovb-connection-ids">{connections.map((c) => <option key={c.id} value={c.id} label={c.name} />)}</datalist>
      <datalist id="ovb-action-keys">
        {actions.map((a) => <option key={a.key} value={a.key}>{a.name}</option>)}
      </datalist>
      <div className="ovb-status-row">
        <p className={`ovb-status is-${status.kind}`} role="status" aria-live="polite">{status.text}</p>
      </div>
      <TestRunDialog open={runOpen} initial={sample} live={live} unpublished={unpublished || dirty} busy={busy}
                     canPublish={canPublish}
                     onStart={startRun} onClose={() => setRunOpen(false)} />
      <div className={`ovb-main${canEdit ? "" : " is-readonly"}${panel === "history" ? " is-wide" : ""}`}>
        {canEdit && <Palette types={Object.keys(meta)} actions={actions} onAdd={onAdd} afterLabel={afterLabel} />}
        <section className="ovb-canvas" aria-label="Workflow graph">
          {unplaced.length > 0 && (
            <div className="ovb-alert ovb-alert--float" role="alert">
              {unplaced.map((e) => <p key={`${e.field}${e.message}`}><code>{e.field}</code> {e.message}</p>)}
            </div>
          )}
          {runId && (
            <RunSummary run={run} runId={runId} pollError={pollError} viewerUrl={runsUrl}
                        onDismiss={() => setRunId(null)} />
          )}
          {steps.length === 0 && (
            <div className="ovb-empty">
              <p className="ovb-empty__title">An empty canvas</p>
              <p>{canEdit ? "Pick a step from the palette to start; each new step follows the selected one." : "This workflow has no steps yet."}</p>
            </div>
          )}
          <ReactFlow
            nodes={rfNodes} edges={edges} nodeTypes={nodeTypes}
            onNodesChange={onNodesChange} onEdgesChange={onEdgesChange} onConnect={canEdit ? onConnect : undefined}
            onPaneClick={() => setSelected(null)}
            nodesDraggable={false} nodesConnectable={canEdit} deleteKeyCode={null}
            fitView minZoom={0.2} maxZoom={2} proOptions={{ hideAttribution: true }}
            defaultEdgeOptions={{ type: "smoothstep", zIndex: 1 }}
            ariaLabelConfig={{ "node.a11yDescription.default": "Press Enter to select this step, Delete to remove it." }}
          >
            <Background gap={20} size={1.2} color="#cbd2e1" />
            <Controls showInteractive={false} position="bottom-left" />
            <MiniMap pannable zoomable position="bottom-right" nodeBorderRadius={8}
                     nodeClassName={(n) => (n.type === "block" ? "ovb-mini-block" : "ovb-mini-step")} />
          </ReactFlow>
        </section>
        {panel === "history" ? (
          <History versions={versions} draft={definition} live={live} people={people} canEdit={canEdit}
                   canPublish={canPublish} busy={busy} focusRef={historyRef} onRestore={restore}
                   onMakeLive={makeLive} onMarks={setMarks} onClose={() => { setPanel(null); historyButton.current?.focus(); }} />
        ) : entry ? (
          <Inspector key={entry.step.id} entry={entry} meta={meta} actions={actions}
                     errors={errorsByStep[entry.step.id] || []} readOnly={!canEdit}
                     taken={allIds(definition)} focusRef={headingRef} api={api}
                     onChange={(field, value) => change(setField(current.current, entry.step.id, field, value))}
                     onRename={(to) => { change(renameStep(current.current, entry.step.id, to, meta)); setSelected(to); }}
                     onDelete={() => onDelete(entry.step.id)}
                     onAddBranch={() => change(addBranch(current.current, entry.step.id))}
                     onClose={() => setSelected(null)} />
        ) : (
          <aside className="ovb-inspector ovb-overview" aria-labelledby="ovb-steps-title">
            <div className="ovb-inspector__head">
              <div>
                <p className="ovb-inspector__type">Workflow</p>
                <h2 id="ovb-steps-title">Steps</h2>
              </div>
            </div>
            <div className="ovb-inspector__scroll">
              <ul className="ovb-steps">
                {steps.map(({ step, blockKey }) => {
                  const info = typeInfo(step.type);
                  const n = (errorsByStep[step.id] || []).length;
                  return (
                    <li key={step.id} className={blockKey ? "is-nested" : undefined}>
                      <button type="button" className="ovb-steps__item" onClick={() => { focusPanel.current = true; setSelected(step.id); }}>
                        <span className={`ovb-palette__glyph ovb-node--${info.group}`} aria-hidden="true"><StepIcon type={step.type} size={14} /></span>
                        <span className="ovb-steps__name">{step.name || step.id}</span>
                        <span className="ovb-steps__type">{info.label}</span>
                        {n > 0 && <span className="ovb-pill is-error">{n} problem{n > 1 ? "s" : ""}</span>}
                      </button>
                    </li>
                  );
                })}
              </ul>
              <p className="ovb-muted ovb-help">
                Tab to a step or a connection on the canvas and press Enter to select it;
                <kbd>Del</kbd> deletes it; connect steps with the Flow fields of a step&rsquo;s panel (or drag
                between handles);
                <kbd>Ctrl</kbd>+<kbd>Z</kbd> undoes, <kbd>Ctrl</kbd>+<kbd>Shift</kbd>+<kbd>Z</kbd> redoes.
              </p>
            </div>
          </aside>
        )}
      </div>
    </div>
  );
}

export function Builder(props) {
  return (
    <ReactFlowProvider>
      <Canvas {...props} />
    </ReactFlowProvider>
  );
}
