// The visual builder: palette, canvas, side panel. Its state is the definition (with
// undo/redo history, useHistory.js); the canvas and the forms are views of it. Saving and
// publishing (useDraft.js), the test run (useTestRun.js) and the keyboard (useShortcuts.js)
// are hooks of their own.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import {
  Background, Controls, MiniMap, ReactFlow, ReactFlowProvider, applyNodeChanges, useReactFlow,
} from "@xyflow/react";
import { typeInfo } from "./catalog.js";
import {
  addBranch, addStep, allIds, connect, deleteStep, disconnect, findStep, freshStep, renameStep, setField, walk,
} from "./definition.js";
import { diffDefinitions } from "./diff.js";
import { toGraph } from "./graph.js";
import { History, useVersions } from "./History.jsx";
import { Inspector } from "./Inspector.jsx";
import { nodeTypes, stepNode } from "./nodes.jsx";
import { Palette } from "./Palette.jsx";
import { StepList } from "./StepList.jsx";
import { RunSummary, TestRunDialog } from "./TestRun.jsx";
import { Toolbar } from "./Toolbar.jsx";
import { useDraft } from "./useDraft.js";
import { useHistory } from "./useHistory.js";
import { useShortcuts } from "./useShortcuts.js";
import { useTestRun } from "./useTestRun.js";
import { useWorkflow } from "./useWorkflow.js";

function Canvas({ config, api }) {
  const { workflowId, canEdit, canPublish, canRun, backUrl, runsUrl, newConnectionUrl } = config;
  const loaded = useWorkflow(api, workflowId);
  const { meta, actions, agents, connections } = loaded;
  const history = useHistory();
  const { definition, current, change } = history;
  const [workflow, setWorkflow] = useState(null);
  const [status, setStatus] = useState({ kind: "info", text: "Loading…" });
  const announce = useCallback((text, kind = "info") => setStatus({ kind, text }), []);
  const [selected, setSelected] = useState(null);
  const [edgeSelected, setEdgeSelected] = useState(null);
  const [rfNodes, setRfNodes] = useState([]);
  const headingRef = useRef(null);
  const focusPanel = useRef(false);
  const flow = useReactFlow();
  const { versions, people, reloadVersions } = useVersions(api, workflowId);
  const [panel, setPanel] = useState(null); // "history" replaces the side panel while open
  const [marks, setMarks] = useState({}); // step id -> "added" | "changed", from the history's diff
  const historyRef = useRef(null);
  const historyButton = useRef(null);
  const draft = useDraft({ api, workflowId, history, announce, setWorkflow, reloadVersions,
                           onRefused: setSelected });
  const { dirty, busy, errorsByStep } = draft;
  const testRun = useTestRun({ api, workflowId, publish: draft.publish, setBusy: draft.setBusy,
                               announce, onStarted: () => setSelected(null) });

  const { load } = history;
  const { markSaved } = draft;
  useEffect(() => {
    if (loaded.error) announce(loaded.error, "error");
    if (!loaded.definition) return;
    setWorkflow(loaded.workflow);
    load(loaded.definition);
    markSaved(loaded.definition);
    announce("");
  }, [loaded.workflow, loaded.definition, loaded.error, load, markSaved, announce]);

  const graph = useMemo(() => (definition && meta ? toGraph(definition, meta) : { nodes: [], edges: [] }),
                        [definition, meta]);
  useEffect(() => {
    setRfNodes(graph.nodes.map((n) => (n.type !== "step" ? n : stepNode(n, {
      errors: errorsByStep[n.id] || [], selected: n.id === selected, mark: marks[n.id],
      run: testRun.statuses ? testRun.statuses[n.id] || "pending" : undefined,
    }))));
  }, [graph, errorsByStep, selected, testRun.statuses, marks]);

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

  const onAdd = useCallback((type, extra) => {
    const def = current.current;
    if (!def) return;
    const step = freshStep(def, type, extra);
    change(addStep(def, step, selected, meta));
    focusPanel.current = true;
    setSelected(step.id);
    announce(`Added ${typeInfo(type).label} step ${step.id}${selected ? ` after ${selected}` : ""}.`);
  }, [change, current, selected, meta, announce]);

  const onDelete = useCallback((id) => {
    const def = current.current;
    if (!def || !id) return;
    change(deleteStep(def, id, meta));
    setSelected(null);
    announce(`Deleted step ${id}.`);
  }, [change, current, meta, announce]);

  useShortcuts({
    canEdit, onSave: draft.saveIfChanged, onUndo: history.undo, onRedo: history.redo,
    onDelete: () => {
      const edge = edgeSelected && graph.edges.find((x) => x.id === edgeSelected);
      if (edge?.data) {
        change(disconnect(current.current, edge.data.step, edge.data.field, edge.data.item));
        setEdgeSelected(null);
        announce(`Removed the connection from ${edge.source} to ${edge.target}.`);
        return true;
      }
      if (!selected) return false;
      onDelete(selected);
      return true;
    },
  });

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
  }, [change, current, meta, announce]);

  if (!definition || !meta) {
    return <div className="ovb-loading" role="status">{status.text || "Loading…"}</div>;
  }
  const steps = walk(definition);
  const unplaced = draft.errors.filter((e) => !e.step);
  const live = workflow?.current_version || null;
  const liveDefinition = versions.find((v) => v.number === live)?.definition;
  const unpublished = Boolean(liveDefinition) && !diffDefinitions(liveDefinition, definition).same;
  const afterLabel = selected ? `Adds after ${selected}` : steps.length ? "Adds at the end" : "Adds the first step";
  const pick = (id) => { focusPanel.current = true; setSelected(id); };

  return (
    <div className="ovb-app">
      <Toolbar workflow={workflow} dirty={dirty} canEdit={canEdit} canRun={canRun} canPublish={canPublish}
               canUndo={history.canUndo} canRedo={history.canRedo} busy={busy}
               historyOpen={panel === "history"} historyButton={historyButton}
               onUndo={history.undo} onRedo={history.redo} onSave={draft.save}
               onHistory={() => { setSelected(null); setPanel(panel === "history" ? null : "history"); }}
               onTestRun={() => testRun.setOpen(true)} onPublish={draft.publish} backUrl={backUrl} />
      <datalist id="ovb-agent-names">{agents.map((name) => <option key={name} value={name} />)}</datalist>
      <datalist id="ovb-action-keys">
        {actions.map((a) => <option key={a.key} value={a.key}>{a.name}</option>)}
      </datalist>
      <div className="ovb-status-row">
        <p className={`ovb-status is-${status.kind}`} role="status" aria-live="polite">{status.text}</p>
      </div>
      <TestRunDialog open={testRun.open} initial={testRun.sample(liveDefinition || definition)} live={live}
                     unpublished={unpublished || dirty} busy={busy} canPublish={canPublish}
                     onStart={testRun.start} onClose={() => testRun.setOpen(false)} />
      <div className={`ovb-main${canEdit ? "" : " is-readonly"}${panel === "history" ? " is-wide" : ""}`}>
        {canEdit && <Palette types={Object.keys(meta)} actions={actions} onAdd={onAdd} afterLabel={afterLabel} />}
        <section className="ovb-canvas" aria-label="Workflow graph">
          {unplaced.length > 0 && (
            <div className="ovb-alert ovb-alert--float" role="alert">
              {unplaced.map((e) => <p key={`${e.field}${e.message}`}><code>{e.field}</code> {e.message}</p>)}
            </div>
          )}
          {testRun.runId && (
            <RunSummary run={testRun.run} runId={testRun.runId} pollError={testRun.error} viewerUrl={runsUrl}
                        onDismiss={testRun.dismiss} />
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
                   canPublish={canPublish} busy={busy} focusRef={historyRef} onRestore={draft.restore}
                   onMakeLive={draft.makeLive} onMarks={setMarks}
                   onClose={() => { setPanel(null); historyButton.current?.focus(); }} />
        ) : entry ? (
          <Inspector key={entry.step.id} entry={entry} meta={meta} actions={actions}
                     connections={connections} newConnectionUrl={newConnectionUrl}
                     errors={errorsByStep[entry.step.id] || []} readOnly={!canEdit}
                     taken={allIds(definition)} focusRef={headingRef} api={api}
                     onChange={(field, value) => change(setField(current.current, entry.step.id, field, value))}
                     onRename={(to) => { change(renameStep(current.current, entry.step.id, to, meta)); setSelected(to); }}
                     onDelete={() => onDelete(entry.step.id)}
                     onAddBranch={() => change(addBranch(current.current, entry.step.id))}
                     onClose={() => setSelected(null)} />
        ) : (
          <StepList steps={steps} errorsByStep={errorsByStep} onPick={pick} />
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
