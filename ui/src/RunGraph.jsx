// The run viewer's graph: the builder's canvas, read only, with each step coloured by
// the status of its latest step run. It reads the run (and, once, its version's
// definition) from the public API, and reads the run again every 2 s until it ends.
import { Background, Controls, ReactFlow, ReactFlowProvider, useReactFlow } from "@xyflow/react";
import { useEffect, useMemo, useState } from "react";
import { typeInfo } from "./catalog.js";
import { toGraph } from "./graph.js";
import { nodeTypes } from "./nodes.jsx";

const FINISHED = new Set(["succeeded", "failed", "cancelled", "timed_out"]);
const POLL_MS = 2000;
const LABELS = { timed_out: "timed out" };

function useRun(api, runId) {
  const [state, setState] = useState({ graph: null, statuses: {}, error: "" });
  useEffect(() => {
    let gone = false;
    let timer = null;
    let graph = null;
    async function load() {
      try {
        const run = await api("GET", `/runs/${runId}`);
        if (!graph) {
          const [versions, types] = await Promise.all([
            api("GET", `/workflows/${run.workflow_id}/versions`), api("GET", "/step-types")]);
          const version = (versions?.items || []).find((v) => v.number === run.version);
          const meta = Object.fromEntries((types?.items || []).map((t) => [t.type, t]));
          graph = toGraph(version?.definition || { steps: [] }, meta);
        }
        const statuses = {};
        for (const row of run.steps || []) statuses[row.step_id] = row.status; // latest wins
        if (gone) return;
        setState({ graph, statuses, error: "" });
        if (!FINISHED.has(run.status)) timer = setTimeout(load, POLL_MS);
      } catch (err) {
        if (!gone) setState((s) => ({ ...s, error: `The graph could not be loaded: ${err.message}` }));
      }
    }
    load();
    return () => { gone = true; clearTimeout(timer); };
  }, [api, runId]);
  return state;
}

function Canvas({ api, runId }) {
  const { graph, statuses, error } = useRun(api, runId);
  const flow = useReactFlow();
  useEffect(() => { // a narrower window still shows the whole graph
    const refit = () => flow.fitView({ padding: 0.2, maxZoom: 1 });
    window.addEventListener("resize", refit);
    return () => window.removeEventListener("resize", refit);
  }, [flow]);
  const nodes = useMemo(() => (graph ? graph.nodes.map((n) => {
    if (n.type !== "step") return n;
    const status = statuses[n.id] || "pending";
    const info = typeInfo(n.data.step.type);
    return { ...n, className: `ovb-run--${status}`, focusable: true,
             data: { ...n.data, errors: [], status: LABELS[status] || (status === "pending" ? "not reached" : status) },
             ariaLabel: `${info.label} step ${n.data.step.name || n.id}: ${LABELS[status] || status}` };
  }) : []), [graph, statuses]);
  if (error) return <p className="ovb-muted">{error}</p>;
  if (!graph) return <div className="ovb-loading">Loading the graph…</div>;
  return (
    <ReactFlow nodes={nodes} edges={graph.edges} nodeTypes={nodeTypes}
               nodesDraggable={false} nodesConnectable={false} elementsSelectable={false}
               deleteKeyCode={null} fitView fitViewOptions={{ padding: 0.2, maxZoom: 1 }}
               minZoom={0.2} maxZoom={2} proOptions={{ hideAttribution: true }}
               defaultEdgeOptions={{ type: "smoothstep", zIndex: 1 }}>
      <Background gap={20} size={1.2} color="#cbd2e1" />
      <Controls showInteractive={false} position="bottom-left" />
    </ReactFlow>
  );
}

export function RunGraph({ api, runId }) {
  return <ReactFlowProvider><Canvas api={api} runId={runId} /></ReactFlowProvider>;
}
