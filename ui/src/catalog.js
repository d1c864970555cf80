// How each step type is presented: its palette group, label and one-line help.
// The types themselves (and their fields) come from the server's step schemas.

export const GROUPS = [
  { key: "agents", label: "AI agents" },
  { key: "logic", label: "Logic" },
  { key: "people", label: "People" },
  { key: "data", label: "Data & timing" },
  { key: "apps", label: "Apps & actions" },
];

const TYPES = {
  agent: { group: "agents", label: "Agent", help: "One agent works on a task" },
  classify: { group: "agents", label: "Classify", help: "An agent picks a route" },
  supervisor: { group: "agents", label: "Supervisor",
                help: "A lead agent delegates to specialists" },
  review_loop: { group: "agents", label: "Review loop",
                 help: "A drafter and a reviewer iterate" },
  group: { group: "agents", label: "Agent group", help: "Agents take turns in a chat" },
  condition: { group: "logic", label: "Condition", help: "Branch on a CEL expression" },
  router: { group: "logic", label: "Router", help: "First matching route wins" },
  parallel: { group: "logic", label: "Parallel", help: "Run branches at once, then join" },
  loop: { group: "logic", label: "Loop", help: "Repeat a block for each item" },
  stop: { group: "logic", label: "Stop", help: "End the run with a status" },
  subworkflow: { group: "logic", label: "Sub-workflow",
                 help: "Run another workflow and wait" },
  approval: { group: "people", label: "Approval", help: "A person approves or edits" },
  transform: { group: "data", label: "Transform", help: "Shape data with templates" },
  delay: { group: "data", label: "Delay", help: "Wait for a time or a duration" },
  action: { group: "apps", label: "Action", help: "Call a connector action" },
};

export function typeInfo(type) {
  return TYPES[type] || { group: "logic", label: type || "Unknown", help: "" };
}

// A short line saying what a configured step does, shown under its title.
export function summary(step) {
  const clip = (text) => (text.length > 44 ? `${text.slice(0, 43)}…` : text);
  const value = {
    condition: step.if && `if ${step.if}`,
    router: Array.isArray(step.routes) && `${step.routes.length} route${step.routes.length === 1 ? "" : "s"}`,
    action: step.action,
    loop: step.for_each ? `for each ${step.for_each}` : step.until && `until ${step.until}`,
    parallel: Array.isArray(step.branches) && `${step.branches.length} branches, join ${
      typeof step.join === "object" ? `${step.join?.n}` : step.join || "all"}`,
    delay: step.seconds !== undefined ? `${step.seconds} s` : step.until && `until ${step.until}`,
    approval: step.prompt,
    stop: step.status,
    subworkflow: step.workflow_id,
    agent: step.task,
    classify: Array.isArray(step.routes) && step.routes.map((r) => r?.name).filter(Boolean).join(" · "),
    supervisor: step.task,
    review_loop: step.task,
    group: step.task,
    transform: step.output !== undefined && "reshapes data",
  }[step.type];
  return value ? clip(String(value)) : "";
}
