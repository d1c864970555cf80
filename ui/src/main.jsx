// Mounts the builder on <div id="overture-builder" data-...> (templates/builder.html).
// The page hands over the workflow, the tenant and the CSRF token; everything else
// (the workflow, the step types' schemas, the connector catalogue) comes from the public API.
import { createRoot } from "react-dom/client";
import "@xyflow/react/dist/style.css";
import "./builder.css";
import { makeApi } from "./api.js";
import { Builder } from "./Builder.jsx";
import { RunGraph } from "./RunGraph.jsx";

const root = document.getElementById("overture-builder");
const runRoot = document.getElementById("overture-run-graph");
if (runRoot) {
  // The run viewer's read-only graph (templates/console/run.html).
  const d = runRoot.dataset;
  const api = makeApi({ base: d.apiBase || "/api/v1", tenant: d.tenant, csrf: d.csrfToken });
  createRoot(runRoot).render(<RunGraph api={api} runId={d.runId} />);
} else if (root) {
  const d = root.dataset;
  const config = {
    workflowId: d.workflowId,
    canEdit: d.canEdit === "true",
    canPublish: d.canPublish === "true",
    canRun: d.canRun === "true",
    runsUrl: d.runsUrl || "/runs/",
    backUrl: d.backUrl || "/",
    newConnectionUrl: d.newConnectionUrl || "/connections/new",
  };
  const api = makeApi({ base: d.apiBase || "/api/v1", tenant: d.tenant, csrf: d.csrfToken });
  createRoot(root).render(<Builder config={config} api={api} />);
}
