// What the builder reads from the public API: the workflow and its draft, the step
// types' schemas, and for the side panel's pickers the connector actions, the agents and
// the workspace's connections (read again on demand, after one is created elsewhere).
import { useCallback, useEffect, useState } from "react";

function items(api, path, pick, set) {
  return api("GET", path).then((page) => set((page?.items || []).flatMap(pick))).catch(() => set([]));
}

// Whether the connector's actions need a connection: what the engine refuses without one
// (connectors/execute.py, execute_unconnected).
function needsConnection(connector) {
  const auth = connector.auth || {};
  return !["none", "custom"].includes(auth.kind) || (auth.fields || []).some((f) => f.required);
}

function useConnections(api) {
  const [state, setState] = useState({ items: [], error: "", loading: true });
  const reload = useCallback(() => {
    setState((s) => ({ ...s, loading: true }));
    return api("GET", "/connections?limit=200")
      .then((page) => setState({ items: page?.items || [], error: "", loading: false }))
      .catch((err) => setState({ items: [], error: err.message, loading: false }));
  }, [api]);
  useEffect(() => { reload(); }, [reload]);
  return { ...state, reload };
}

export function useWorkflow(api, workflowId) {
  const [loaded, setLoaded] = useState({ workflow: null, meta: null, definition: null, error: "" });
  const [actions, setActions] = useState([]);
  const [agents, setAgents] = useState([]);
  const connections = useConnections(api);
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
      connectorKey: c.key, needsConnection: needsConnection(c),
    })), unlessGone(setActions));
    items(api, "/agents?limit=200", (a) => [a.name], unlessGone(setAgents));
    return () => { gone = true; };
  }, [api, workflowId]);
  return { ...loaded, actions, agents, connections };
}
