// A structural diff of two workflow definitions, step by step: which steps were added,
// removed or changed, and for a changed step which of its fields (as paths such as
// `input.url` or `routes[1].next`) went from what to what. Steps are matched by id,
// wherever they live; a step's nested blocks (parallel branches, a loop body) are compared
// as the ids they hold, since their steps are compared on their own.
import { childBlocks, walk } from "./definition.js";

const BLOCK_FIELDS = { parallel: "branches", loop: "body" };

function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

// The step without its nested steps: a branch or body reads as the ids it starts with.
function flat(step) {
  const field = BLOCK_FIELDS[step.type];
  if (!field || !(field in step)) return step;
  const copy = { ...step };
  const shape = (block) => ({ ...block, steps: (block?.steps || []).map((s) => s?.id) });
  copy[field] = field === "branches"
    ? (Array.isArray(step.branches) ? step.branches.map(shape) : step.branches)
    : shape(step.body);
  return copy;
}

// Every leaf that differs between a and b: [{path, before, after}] (undefined = absent).
export function fieldChanges(a, b, path = "") {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (isObject(a) && isObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    return keys.flatMap((k) => fieldChanges(a[k], b[k], path ? `${path}.${k}` : k));
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    return a.flatMap((item, i) => fieldChanges(item, b[i], `${path}[${i}]`));
  }
  return [{ path: path || "(value)", before: a, after: b }];
}

function where(definition) {
  const found = new Map();
  for (const entry of walk(definition || {})) {
    if (typeof entry.step.id === "string") found.set(entry.step.id, entry);
  }
  return found;
}

function blockName(entry, steps) {
  if (!entry.parentId) return "the workflow";
  const owner = steps.get(entry.parentId)?.step;
  const child = owner ? childBlocks(owner).find((c) => c.key === entry.blockKey) : null;
  return `${child ? child.label.toLowerCase() : "a block"} of ${entry.parentId}`;
}

// {added, removed, changed: [{id, step, fields}], workflow: fields, same}
export function diffDefinitions(before, after) {
  const a = where(before);
  const b = where(after);
  const added = [...b.values()].filter((e) => !a.has(e.step.id)).map((e) => e.step);
  const removed = [...a.values()].filter((e) => !b.has(e.step.id)).map((e) => e.step);
  const changed = [];
  for (const [id, entry] of b) {
    const old = a.get(id);
    if (!old) continue;
    const fields = fieldChanges(flat(old.step), flat(entry.step));
    const from = blockName(old, a);
    const to = blockName(entry, b);
    if (from !== to) fields.unshift({ path: "(moved)", before: from, after: to });
    if (fields.length) changed.push({ id, step: entry.step, fields });
  }
  const { steps: _a, ...restA } = isObject(before) ? before : {};
  const { steps: _b, ...restB } = isObject(after) ? after : {};
  const workflow = fieldChanges(restA, restB);
  return { added, removed, changed, workflow,
           same: !added.length && !removed.length && !changed.length && !workflow.length };
}

// A value as one short line of JSON for the diff's before/after cells.
export function shown(value, limit = 160) {
  if (value === undefined) return "(not set)";
  const text = typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value);
  return text.length > limit ? `${text.slice(0, limit - 1)}…` : text;
}

// The `input.x` names a definition reads: a starting point for a test run's sample input.
export function sampleInput(definition) {
  const names = new Set();
  const text = JSON.stringify(definition || {});
  for (const m of text.matchAll(/\binput\.([A-Za-z_][A-Za-z0-9_]*)/g)) names.add(m[1]);
  return Object.fromEntries([...names].slice(0, 30).map((n) => [n, ""]));
}
