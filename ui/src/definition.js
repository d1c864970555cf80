// The workflow's definition JSON is the builder's only model. The canvas is derived from
// it (graph.js) and every edit here is a function from one definition to the next, so
// undo and redo keep definitions and "Save draft" sends exactly what is shown.
//
// Shape (overture/orchestration/definition.py): a block is {steps: [...], start?}; a
// step continues at `next` (or where a condition/router/agent points); `parallel`
// holds `branches` (blocks), `loop` holds a `body` (block). Ids are unique everywhere.

const ID_RE = /^[a-z][a-z0-9_]{0,62}$/;

export function isValidId(id) {
  return typeof id === "string" && ID_RE.test(id);
}

// The blocks a step holds, keyed as the server keys them ("<id>#<n>", "<id>").
export function childBlocks(step) {
  if (step?.type === "parallel" && Array.isArray(step.branches)) {
    return step.branches.map((block, i) => ({ key: `${step.id}#${i}`, block, index: i,
                                              label: `Branch ${i + 1}` }));
  }
  if (step?.type === "loop" && step.body && typeof step.body === "object") {
    return [{ key: String(step.id), block: step.body, index: 0, label: "Loop body" }];
  }
  return [];
}

// Every step with the block it lives in, depth first in reading order.
export function walk(definition) {
  const found = [];
  const visit = (block, key, parentId) => {
    (Array.isArray(block?.steps) ? block.steps : []).forEach((step, index) => {
      if (!step || typeof step !== "object") return;
      found.push({ step, block, blockKey: key, parentId, index });
      for (const child of childBlocks(step)) visit(child.block, child.key, step.id);
    });
  };
  visit(definition, "", null);
  return found;
}

export function findStep(definition, id) {
  return walk(definition).find((entry) => entry.step.id === id) || null;
}

export function allIds(definition) {
  return new Set(walk(definition).map((entry) => entry.step.id));
}

// Where a step can go next, per its type's `targets` (from the server's step schemas).
// Each: {field, item?, to, label, kind}; `item` is an index into an array field.
export function targetsOf(step, meta) {
  const out = [];
  const add = (field, to, label, kind, item) => {
    if (typeof to === "string" && to) out.push({ field, item, to, label, kind });
  };
  add("next", step.next, "", "next");
  add("on_error", step.on_error, "on error", "error");
  for (const field of meta?.targets || []) {
    const value = step[field];
    if (Array.isArray(value)) {
      value.forEach((entry, i) => {
        if (entry && typeof entry === "object") {
          add(field, entry.next, routeLabel(field, entry, i), "branch", i);
        }
      });
    } else {
      add(field, value, fieldLabel(step, field), field === "else" ? "else" : "branch");
    }
  }
  return out;
}

function fieldLabel(step, field) {
  if (step.type === "condition") return field === "then" ? "true" : "false";
  return { default: "default", on_reject: "rejected", low_confidence: "low confidence",
           human: "to a human", escalate: "escalate" }[field] || field;
}

function routeLabel(field, entry, index) {
  const text = entry.name || entry.status || entry.route || entry.when || `${field} ${index + 1}`;
  return String(text).length > 28 ? `${String(text).slice(0, 27)}…` : String(text);
}

// ---------------------------------------------------------------- edits

export function edit(definition, change) {
  const copy = structuredClone(definition || { steps: [] });
  if (!Array.isArray(copy.steps)) copy.steps = [];
  change(copy);
  return copy;
}

export function newId(definition, type) {
  const ids = allIds(definition);
  const base = type.replace(/[^a-z0-9_]/g, "_").replace(/^[^a-z]+/, "") || "step";
  for (let n = 1; ; n += 1) {
    const id = `${base}_${n}`;
    if (!ids.has(id)) return id;
  }
}

// A fresh step of `type`: the structure it needs to be drawn (blocks), nothing more,
// so what is still to fill in is what publishing reports.
export function freshStep(definition, type, extra = {}) {
  const id = newId(definition, extra.action ? extra.action.split(".").pop() : type);
  const step = { id, type, ...extra };
  const taken = allIds(definition).add(id);
  const filler = () => {
    let n = 1;
    while (taken.has(`${id}_step_${n}`)) n += 1;
    const sid = `${id}_step_${n}`;
    taken.add(sid);
    return { steps: [{ id: sid, type: "transform", output: {} }] };
  };
  if (type === "parallel") step.branches = [filler(), filler()];
  if (type === "loop") step.body = filler();
  if (type === "router") step.routes = [{ when: "", next: null }];
  return step;
}

// The last step of a block that nothing follows: where a new step is attached.
function tailOf(block, meta) {
  const steps = block.steps || [];
  for (let i = steps.length - 1; i >= 0; i -= 1) {
    const s = steps[i];
    if (!s.next && !targetsOf(s, meta[s.type]).some((t) => t.kind !== "error")) return s;
  }
  return null;
}

// Add `step` after `afterId` (taking over its `next`), or at the end of the workflow.
export function addStep(definition, step, afterId, meta) {
  return edit(definition, (def) => {
    const after = afterId ? findStep(def, afterId) : null;
    if (after) {
      const { block, step: prev } = after;
      const at = block.steps.indexOf(prev);
      if (prev.next) step.next = prev.next;
      prev.next = step.id;
      block.steps.splice(at + 1, 0, step);
      return;
    }
    const tail = tailOf(def, meta);
    if (tail) tail.next = step.id;
    def.steps.push(step);
  });
}

export function updateStep(definition, id, change) {
  return edit(definition, (def) => {
    const found = findStep(def, id);
    if (found) change(found.step);
  });
}

export function setField(definition, id, field, value) {
  return updateStep(definition, id, (step) => {
    if (value === undefined || value === "" || value === null) delete step[field];
    else step[field] = value;
  });
}

// Delete a step (and whatever its blocks hold); what pointed at it now points where it
// went, so deleting the middle of a chain keeps the chain.
export function deleteStep(definition, id, meta) {
  return edit(definition, (def) => {
    const found = findStep(def, id);
    if (!found) return;
    const { block, step } = found;
    block.steps.splice(block.steps.indexOf(step), 1);
    if (block.start === id) delete block.start;
    for (const other of block.steps) retarget(other, id, step.next || null, meta);
  });
}

function retarget(step, from, to, meta) {
  for (const field of ["next", "on_error", ...(meta[step.type]?.targets || [])]) {
    const value = step[field];
    if (Array.isArray(value)) {
      value.forEach((entry) => {
        if (entry && entry.next === from) entry.next = to;
      });
    } else if (value === from) {
      if (to) step[field] = to;
      else delete step[field];
    }
  }
}

// Point `source` at `target` (same block only): the first free target field of its type
// (a condition's `then`, then `else`), otherwise its `next`.
export function connect(definition, source, target, meta) {
  return updateStep(definition, source, (step) => {
    const single = (meta[step.type]?.targets || []).filter((f) => {
      const prop = meta[step.type]?.schema?.properties?.[f];
      return prop && !("type" in prop && prop.type === "array");
    });
    const free = single.find((f) => !step[f] && ["then", "else", "default"].includes(f));
    step[free || "next"] = target;
  });
}

// Remove one way on from a step (an edge): `field`, or the `next` of its `item`th entry.
export function disconnect(definition, id, field, item) {
  return updateStep(definition, id, (step) => {
    if (item !== undefined && Array.isArray(step[field])) {
      if (step[field][item]) step[field][item].next = null;
    } else {
      delete step[field];
    }
  });
}

export function renameStep(definition, from, to, meta) {
  return edit(definition, (def) => {
    const found = findStep(def, from);
    if (!found) return;
    found.step.id = to;
    if (found.block.start === from) found.block.start = to;
    for (const other of found.block.steps) retarget(other, from, to, meta);
  });
}

export function addBranch(definition, id) {
  return updateStep(definition, id, (step) => {
    const fresh = freshStep(definition, "parallel");
    step.branches = [...(step.branches || []), fresh.branches[0]];
  });
}

// Publishing's error paths name steps by id ("steps.check.if", nested
// "steps.fan.steps.left.output") or, for a malformed step, by index ("steps.2.type").
export function stepOfErrorPath(definition, path) {
  const parts = String(path || "").split(".");
  let block = definition;
  let found = null;
  for (let i = 0; i + 1 < parts.length; i += 1) {
    if (parts[i] !== "steps") continue;
    const token = parts[i + 1];
    const steps = Array.isArray(block?.steps) ? block.steps : [];
    const step = /^\d+$/.test(token) ? steps[Number(token)]
      : walk(definition).find((e) => e.step.id === token)?.step;
    if (!step) break;
    found = step.id;
    block = step;
    i += 1;
  }
  return found;
}
