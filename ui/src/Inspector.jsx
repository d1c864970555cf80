// The side panel of the selected step: a form generated from its type's JSON Schema
// (and, for an action, from the connector action's input schema). Every field writes
// straight into the definition.
import { useState } from "react";
import { typeInfo } from "./catalog.js";
import { ConnectionField } from "./ConnectionField.jsx";
import { StepIcon } from "./icons.jsx";
import { isValidId } from "./definition.js";
import { CelInput, Field, JsonInput, TextInput, asList, asText, useFieldText } from "./fields.jsx";

const LONG_TEXT = new Set(["task", "prompt", "description"]);
const FLOW = new Set(["next", "on_error"]);
const ADVANCED = new Set(["retry", "timeout_seconds", "on_error", "input"]);
// Flow fields in the order a reader follows them; others keep the schema's order.
const FLOW_ORDER = ["then", "else", "default", "on_reject", "low_confidence", "human", "escalate",
                    "next", "on_error"];
const rank = (f) => (FLOW_ORDER.includes(f) ? FLOW_ORDER.indexOf(f) : FLOW_ORDER.length);
const SKIP = new Set(["id", "type"]);
// Fields naming an agent, or a connector action: suggested from the API's lists.
const AGENT_FIELDS = new Set(["agent", "drafter", "reviewer", "selector", "specialists", "agents"]);
const SUGGEST = (field) => (AGENT_FIELDS.has(field) ? "ovb-agent-names" : field === "action" ? "ovb-action-keys"
  : undefined);

const LABELS = {
  if: "If (CEL)", then: "When true, go to", else: "When false, go to", next: "Next step",
  on_error: "On error, go to", default: "Otherwise, go to", on_reject: "When rejected, go to",
  low_confidence: "Low confidence, go to", human: "Hand to a human at", escalate: "Escalate to",
  for_each: "For each (CEL)", until: "Until", max_iterations: "Max iterations",
  timeout_seconds: "Timeout (seconds)", workflow_id: "Workflow id", min_confidence: "Min confidence",
  max_rounds: "Max rounds", max_turns: "Max turns",
};

function labelOf(field) {
  return LABELS[field] || field.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
}

function isStringList(prop) {
  return prop?.type === "array" && (prop.items?.type === "string" || prop.items?.minLength);
}

function kindOf(field, prop, meta) {
  if (FLOW.has(field) || (meta.targets.includes(field) && prop?.type !== "array")) return "step";
  if (meta.expressions.includes(field)) return "cel";
  if (Array.isArray(prop?.enum)) return "enum";
  if (prop?.type === "string") return LONG_TEXT.has(field) ? "textarea" : "text";
  if (prop?.type === "integer" || prop?.type === "number") return "number";
  if (prop?.type === "boolean") return "boolean";
  if (isStringList(prop)) return "list";
  if (prop?.anyOf && prop.anyOf.some((s) => s.type === "string")) return "text";
  return "json";
}

function SchemaField({ stepId, field, prop, meta, value, error, onChange, siblings, disabled, api, required,
                       connection }) {
  const id = `ovb-f-${stepId}-${field}`;
  const [jsonError, setJsonError] = useState(null);
  const [celProblem, setCelProblem] = useState(null);
  const kind = connection ? "connection" : kindOf(field, prop, meta);
  const label = labelOf(field);
  const commit = (v) => onChange(field, v);
  let control;
  let hint = prop?.description;
  let badge;
  switch (kind) {
    case "step":
      control = (
        <select id={id} className="ovb-input" value={value || ""} disabled={disabled}
                onChange={(e) => commit(e.target.value || undefined)}>
          <option value="">{field === "next" ? "— end of this block —" : "— none —"}</option>
          {siblings.map((s) => <option key={s.id} value={s.id}>{s.name ? `${s.name} (${s.id})` : s.id}</option>)}
        </select>
      );
      break;
    case "connection":
      hint = hint || "The step calls the app with this connection's credentials.";
      control = <ConnectionField id={id} value={value} onCommit={commit} disabled={disabled} {...connection} />;
      break;
    case "cel":
      badge = "CEL";
      hint = hint || "Sees input, steps, run (and item, index in a loop), e.g. input.amount > 100";
      control = <CelInput id={id} value={value} onCommit={commit} disabled={disabled} api={api}
                          setProblem={setCelProblem} />;
      break;
    case "enum":
      control = (
        <select id={id} className="ovb-input" value={value ?? ""} disabled={disabled}
                onChange={(e) => commit(e.target.value || undefined)}>
          <option value="">— default —</option>
          {prop.enum.map((v) => <option key={v} value={v}>{v}</option>)}
        </select>
      );
      break;
    case "number":
      control = <TextInput id={id} value={value} onCommit={commit} disabled={disabled}
                           parse={(t) => (t.trim() === "" ? "" : Number.isNaN(Number(t)) ? t : Number(t))} />;
      break;
    case "boolean":
      control = (
        <input id={id} type="checkbox" className="ovb-check" checked={Boolean(value)} disabled={disabled}
               onChange={(e) => commit(e.target.checked || undefined)} />
      );
      break;
    case "list":
      hint = hint || "Separate names with commas";
      control = <TextInput id={id} value={asList(value)} onCommit={(t) => commit(
        t ? String(t).split(",").map((s) => s.trim()).filter(Boolean) : undefined)} disabled={disabled} />;
      if (AGENT_FIELDS.has(field)) hint = "Agent names, separated by commas";
      break;
    case "json":
      badge = "JSON";
      if (meta.templates.includes(field) || field === "input") hint = hint || "Values may use {{ templates }}";
      control = <JsonInput id={id} value={value} onCommit={commit} disabled={disabled} setError={setJsonError} />;
      break;
    default:
      if (meta.templates.includes(field)) hint = hint || "May use {{ input.name }} templates";
      control = <TextInput id={id} value={value} onCommit={(v) => commit(
        kind === "text" && prop?.anyOf && v !== undefined && !Number.isNaN(Number(v)) ? Number(v) : v)}
                           multiline={kind === "textarea"} disabled={disabled} list={SUGGEST(field)} />;
  }
  return (
    <Field id={id} label={label} hint={hint} badge={badge} required={required}
           error={celProblem || error || jsonError}>{control}</Field>
  );
}

// An action's input, one field per property of the connector action's input schema.
function ActionInput({ step, action, onChange, disabled, errors }) {
  const props = action?.input_schema?.properties;
  if (!props || typeof props !== "object" || !Object.keys(props).length) {
    const id = `ovb-f-${step.id}-input`;
    return (
      <Field id={id} label="Input" badge="JSON" error={errors.input} hint="Values may use {{ templates }}">
        <JsonInput id={id} value={step.input} onCommit={(v) => onChange("input", v)} disabled={disabled}
                   setError={() => {}} />
      </Field>
    );
  }
  const input = step.input && typeof step.input === "object" && !Array.isArray(step.input) ? step.input : {};
  const required = new Set(action.input_schema.required || []);
  const set = (name, v) => {
    const next = { ...input };
    if (v === undefined) delete next[name];
    else next[name] = v;
    onChange("input", Object.keys(next).length ? next : undefined);
  };
  return (
    <fieldset className="ovb-fieldset">
      <legend>{action.name || action.key} input</legend>
      {Object.entries(props).map(([name, prop]) => {
        const id = `ovb-f-${step.id}-input-${name}`;
        const simple = prop?.type === "string" || prop?.type === "number" || prop?.type === "integer";
        let control;
        if (Array.isArray(prop?.enum)) {
          control = (
            <select id={id} className="ovb-input" value={input[name] ?? ""} disabled={disabled}
                    onChange={(e) => set(name, e.target.value || undefined)}>
              <option value="">— default —</option>
              {prop.enum.map((v) => <option key={String(v)} value={v}>{String(v)}</option>)}
            </select>
          );
        } else if (prop?.type === "boolean") {
          control = <input id={id} type="checkbox" className="ovb-check" checked={Boolean(input[name])}
                           disabled={disabled} onChange={(e) => set(name, e.target.checked || undefined)} />;
        } else if (simple) {
          control = <TextInput id={id} value={input[name]} onCommit={(v) => set(name, v)} disabled={disabled}
                               placeholder={prop?.type === "string" ? "text or {{ template }}" : undefined}
                               parse={prop?.type === "string" ? undefined
                                 : (t) => (t.trim() === "" || Number.isNaN(Number(t)) ? t : Number(t))} />;
        }
        return (
          <Field key={name} id={id} label={labelOf(name)} required={required.has(name)}
                 hint={prop?.description} error={errors[`input.${name}`]} badge={control ? undefined : "JSON"}>
            {control || <JsonInput id={id} value={input[name]} onCommit={(v) => set(name, v)} disabled={disabled}
                                   setError={() => {}} />}
          </Field>
        );
      })}
    </fieldset>
  );
}

function IdField({ step, onRename, disabled, taken }) {
  const [text, setText] = useFieldText(step.id, asText);
  const [error, setError] = useState(null);
  const id = `ovb-f-${step.id}-id`;
  const commit = () => {
    if (text === step.id) return setError(null);
    if (!isValidId(text)) return setError("Lower-case letters, digits and _; starts with a letter.");
    if (taken.has(text)) return setError(`Another step is already called ${text}.`);
    setError(null);
    onRename(text);
  };
  return (
    <Field id={id} label="Step id" hint="Other steps and expressions refer to it (steps.<id>)" error={error}>
      <input id={id} className="ovb-input is-mono" value={text} disabled={disabled}
             onChange={(e) => setText(e.target.value)} onBlur={commit}
             onKeyDown={(e) => e.key === "Enter" && commit()} />
    </Field>
  );
}

export function Inspector({ entry, meta, actions, connections, newConnectionUrl, errors, readOnly, taken,
                            onChange, onRename, onDelete, onAddBranch, onClose, focusRef, api }) {
  const { step, block } = entry;
  const info = typeInfo(step.type);
  const stepMeta = meta[step.type] || { schema: { properties: {} }, expressions: [], templates: [],
                                        blocks: [], targets: [], required: [] };
  const props = stepMeta.schema?.properties || {};
  const required = new Set(stepMeta.schema?.required || []);
  const fieldErrors = {};
  const general = [];
  for (const e of errors) {
    const rest = String(e.field).split(`steps.${step.id}`).pop().replace(/^\./, "");
    if (rest && !rest.startsWith("steps.")) {
      const key = rest.split(".")[0];
      const sub = rest.startsWith("input.") ? rest.split(".").slice(0, 2).join(".") : key;
      fieldErrors[sub] = fieldErrors[sub] ? `${fieldErrors[sub]}; ${e.message}` : e.message;
      if (sub !== key) fieldErrors[key] = fieldErrors[key] || e.message;
    } else general.push(e.message);
  }
  const siblings = (block.steps || []).filter((s) => s && s.id !== step.id);
  const action = step.type === "action" ? actions.find((a) => a.key === step.action) : null;
  const order = Object.keys(props).filter((f) => !SKIP.has(f) && !stepMeta.blocks.includes(f));
  const main = order.filter((f) => f === "name" || (!FLOW.has(f) && !ADVANCED.has(f))
                                  || (f === "input" && step.type !== "action" && step.type !== "condition"
                                      && step.type !== "router" && "input" in step));
  const flow = order.filter((f) => FLOW.has(f) || (stepMeta.targets.includes(f) && props[f]?.type !== "array"))
    .sort((a, b) => rank(a) - rank(b));
  const mainFields = main.filter((f) => !flow.includes(f))
    .sort((a, b) => (a === "name" ? -1 : b === "name" ? 1 : Number(required.has(b)) - Number(required.has(a))));
  const advanced = order.filter((f) => ADVANCED.has(f) && !flow.includes(f) && !main.includes(f)
                                && !(action && f === "input"));
  const render = (field) => (
    <SchemaField key={field} stepId={step.id} field={field} prop={props[field]} meta={stepMeta}
                 value={step[field]} error={fieldErrors[field]} onChange={onChange}
                 siblings={siblings} disabled={readOnly} api={api} required={required.has(field)}
                 connection={step.type === "action" && field === "connection"
                   ? { action, connections, newUrl: newConnectionUrl } : undefined} />
  );
  return (
    <aside className="ovb-inspector" aria-labelledby="ovb-inspector-title">
      <div className="ovb-inspector__head">
        <div className={`ovb-inspector__icon ovb-node--${info.group}`} aria-hidden="true"><StepIcon type={step.type} size={20} /></div>
        <div>
          <p className="ovb-inspector__type">{info.label} step</p>
          <h2 id="ovb-inspector-title" tabIndex={-1} ref={focusRef}>{step.name || step.id}</h2>
        </div>
        <button type="button" className="ovb-icon-btn" onClick={onClose} aria-label="Close the step panel">×</button>
      </div>
      {general.length > 0 && (
        <div className="ovb-alert" role="alert">{general.map((m) => <p key={m}>{m}</p>)}</div>
      )}
      <div className="ovb-inspector__scroll">
        <section className="ovb-section" aria-label="Settings">
          <h3>Settings</h3>
          {mainFields.map(render)}
          {action && <ActionInput step={step} action={action} onChange={onChange} disabled={readOnly}
                                  errors={fieldErrors} />}
          {step.type === "parallel" && !readOnly && (
            <button type="button" className="ovb-btn" onClick={onAddBranch}>Add a branch</button>
          )}
        </section>
        <section className="ovb-section" aria-label="Flow">
          <h3>Flow</h3>
          {flow.map(render)}
        </section>
        <details className="ovb-section">
          <summary><h3>Advanced</h3></summary>
          <IdField step={step} onRename={onRename} disabled={readOnly} taken={taken} />
          {advanced.map(render)}
        </details>
      </div>
      {!readOnly && (
        <div className="ovb-inspector__foot">
          <button type="button" className="ovb-btn ovb-btn--danger" onClick={onDelete}>
            Delete step
          </button>
          <span className="ovb-kbd-hint"><kbd>Del</kbd> on the canvas</span>
        </div>
      )}
    </aside>
  );
}
