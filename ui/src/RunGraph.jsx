// The run viewer's graph: the builder's canvas, read only, each step painted with the
// status of its step runs the way the builder paints a test run (runs.js, stepNode).
// It reads the run every 2 s until it ends, and its version's definition once.
import { Background, Controls, ReactFlow, ReactFlowProvider, useReactFlow } from "@xyflow/react";
import { useEffect, useMemo, useState } from "react";
import { toGraph } from "./graph.js";
import { nodeTypes, stepNode } from "./nodes.jsx";
import { stepStatuses, useRunPoll } from "./runs.js";

const POLL_MS = 2000;

// The graph of the version the run ran, once the run says which.
function useVersionGraph(api, run) {
  const [state, setState] = useState({ graph: null, error: "" });
  const workflowId = run?.workflow_id;
  const number = run?.version;
  useEffect(() => {
    if (!workflowId) return undefined;
    let gone = false;
    Promise.all([api("GET", `/workflows/${workflowId}/versions`), api("GET", "/step-types")])
      .then(([versions, types]) => {
        const version = (versions?.items || []).find((v) => v.number === number);
        const meta = Object.fromEntries((types?.items || []).map((t) => [t.type, t]));
        if (!gone) setState({ graph: toGraph(version?.definition || { steps: [] }, meta), error: "" });
      })
      .catch((err) => { if (!gone) setState({ graph: null, error: err.message }); });
    return () => { gone = true; };
  }, [api, workflowId, number]);
  return state;
}

function Canvas({ api, runId }) {
  const { run, error: runError } = useRunPoll(api, runId, POLL_MS);
  const { graph, error: graphError } = useVersionGraph(api, run);
  const flow = useReactFlow();
  useEffect(() => { // a narrower window still shows the whole graph
    const refit = () => flow.fitView({ padding: 0.2, maxZoom: 1 });
    window.addEventListener("resize", refit);
    return () => window.removeEventListener("resize", refit);
  }, [flow]);
  const nodes = useMemo(() => {
    if (!graph) return [];
    const statuses = stepStatuses(run);
    return graph.nodes.map((n) => (n.type === "step"
      ? { ...stepNode(n, { run: statuses[n.id] || "pending" }), focusable: true } : n));
  }, [graph, run]);
  const error = graphError || (!graph && runError);
  if (error) return <p className="ovb-muted">The graph could not be loaded: {error}</p>;
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
