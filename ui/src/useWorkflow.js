// What the builder reads once from the public API: the workflow and its draft, the step
// types' schemas, and for the side panel's pickers the connector actions, the agents and
// the workspace's connections.
import { useEffect, useState } from "react";

function items(api, path, pick, set) {
  return api("GET", path).then((page) => set((page?.items || []).flatMap(pick))).catch(() => set([]));
}

export function useWorkflow(api, workflowId) {
  const [loaded, setLoaded] = useState({ workflow: null, meta: null, definition: null, error: "" });
  const [actions, setActions] = useState([]);
  const [agents, setAgents] = useState([]);
  const [connections, setConnections] = useState(null); // null until the list is read
  useEffect(() => {
    let gone = false;
    const unlessGone = (set) => (value) => { if (!gone) set(value); };
    Promise.all([api("GET", `/workflows/${workflowId}`), api("GET", "/step-types")]).then(([wf, types]) => {
      if (gone) return;
      const definition = wf.definition && typeof wf.definition === "object" ? wf.definition : { steps: [] };
      const meta = Object.fromEntries((types?.items || []).map((t) => [t.type, t]));
      setLoaded({ workflow: wf, meta, definition, error: "" });
    }).catch((err) => unlessGone(setLoaded)({ workflow: null, meta: null, definition: null,
                                               error: `Could not load the workflow: ${err.message}` }));
    items(api, "/connectors", (c) => (c.actions || []).map((a) => ({
      ...a, key: `${c.key}.${a.key}`, name: `${c.name}: ${a.name || a.key}`, connector: c.name,
    })), unlessGone(setActions));
    items(api, "/agents?limit=200", (a) => [a.name], unlessGone(setAgents));
    items(api, "/connections?limit=200", (c) => [c], unlessGone(setConnections));
    return () => { gone = true; };
  }, [api, workflowId]);
  return { ...loaded, actions, agents, connections };
}
