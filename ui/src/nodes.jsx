// The two node kinds on the canvas: a step, and a block (parallel branch or loop body)
// drawn as a group around its steps.
import { Handle, Position } from "@xyflow/react";
import { summary, typeInfo } from "./catalog.js";
import { agentsOf } from "./graph.js";
import { StepIcon } from "./icons.jsx";
import { STATUS_LABEL } from "./runs.js";

// A step's node as the canvas shows it: its publish errors, the status of a run shown on
// the graph (the builder's test run, the run viewer) and the history's mark.
export function stepNode(node, { errors = [], run, mark, selected = false }) {
  const info = typeInfo(node.data.step.type);
  const n = errors.length;
  return {
    ...node, selected, className: run ? `ovb-run--${run}` : undefined,
    data: { ...node.data, errors, run, mark },
    ariaLabel: `${info.label} step ${node.data.step.name || node.id}${n ? `, ${n} problem${n > 1 ? "s" : ""}` : ""}${
      run ? `, run: ${STATUS_LABEL[run] || run}` : ""}`,
  };
}

function StepNode({ data, selected }) {
  const { step, errors, run, mark } = data;
  const info = typeInfo(step.type);
  const line = summary(step);
  const agents = agentsOf(step);
  const classes = ["ovb-node", `ovb-node--${info.group}`];
  if (selected) classes.push("is-selected");
  if (errors.length) classes.push("has-error");
  if (mark) classes.push(`is-${mark}`);
  return (
    <div className={classes.join(" ")} data-step-id={step.id}>
      <Handle type="target" position={Position.Top} className="ovb-handle" />
      {mark && <span className={`ovb-node__mark is-${mark}`}>{mark === "added" ? "Added" : "Changed"}</span>}
      {run && <span className={`ovb-node__run is-${run}`}>{STATUS_LABEL[run] || run}</span>}
      <div className="ovb-node__icon" aria-hidden="true"><StepIcon type={step.type} size={19} /></div>
      <div className="ovb-node__body">
        <div className="ovb-node__meta">
          <span className="ovb-node__type">{info.label}</span>
          <code className="ovb-node__id">{step.id}</code>
        </div>
        <div className="ovb-node__title">{step.name || info.label}</div>
        <div className={line ? "ovb-node__summary" : "ovb-node__summary is-empty"}>
          {line || "Not configured yet"}
        </div>
        {agents.length > 0 && (
          <ul className="ovb-node__agents" aria-label="Agents">
            {agents.slice(0, 4).map((a, i) => (
              <li key={`${a.role}-${a.name}-${i}`} className={`ovb-chip ovb-chip--${a.role}`}
                  title={`${a.role}: ${a.name}`}>{a.name}</li>
            ))}
            {agents.length > 4 && <li className="ovb-chip">+{agents.length - 4}</li>}
          </ul>
        )}
      </div>
      {errors.length > 0 && (
        <div className="ovb-node__error" role="note">
          <span aria-hidden="true">!</span> {errors[0].message}
          {errors.length > 1 && <em> (+{errors.length - 1} more)</em>}
        </div>
      )}
      <Handle type="source" position={Position.Bottom} className="ovb-handle" />
    </div>
  );
}

function BlockNode({ data }) {
  const owner = data.owner;
  return (
    <div className={`ovb-block ovb-block--${owner.type}`}>
      <Handle type="target" position={Position.Top} className="ovb-handle ovb-handle--hidden" />
      <div className="ovb-block__label">
        <span>{data.label}</span>
        <span className="ovb-block__owner">of {owner.name || owner.id}</span>
      </div>
      <Handle type="source" position={Position.Bottom} className="ovb-handle ovb-handle--hidden" />
    </div>
  );
}

export const nodeTypes = { step: StepNode, block: BlockNode };
