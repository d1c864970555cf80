// Nodes and edges for React Flow, derived from the definition and laid out with dagre.
// Each block (the workflow, a parallel branch, a loop body) is laid out on its own,
// inside out; a child block becomes a group node of its measured size in its parent.
import dagre from "@dagrejs/dagre";
import { childBlocks, targetsOf } from "./definition.js";

export const NODE_W = 260;
const NODE_H = 76;
const AGENT_ROW = 26;
const PAD = 20;
const HEADER = 34;

function nodeHeight(step) {
  return NODE_H + (agentsOf(step).length ? AGENT_ROW : 0);
}

// The agents a step runs, shown inside its node.
export function agentsOf(step) {
  switch (step.type) {
    case "agent":
    case "classify":
      return step.agent ? [{ role: "agent", name: step.agent }] : [];
    case "supervisor":
      return [
        ...(step.agent ? [{ role: "supervisor", name: step.agent }] : []),
        ...(Array.isArray(step.specialists) ? step.specialists : []).map((name) => ({
          role: "specialist", name })),
      ];
    case "review_loop":
      return [
        ...(step.drafter ? [{ role: "drafter", name: step.drafter }] : []),
        ...(step.reviewer ? [{ role: "reviewer", name: step.reviewer }] : []),
      ];
    case "group":
      return (Array.isArray(step.agents) ? step.agents : []).map((name) => ({
        role: "member", name }));
    default:
      return [];
  }
}

function joins(step, ids) {
  return childBlocks(step).length > 0 && typeof step.next === "string" && ids.has(step.next);
}

function layoutBlock(block, key, meta) {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: "TB", nodesep: 90, ranksep: 64, edgesep: 24, marginx: 0, marginy: 0 });
  g.setDefaultEdgeLabel(() => ({}));
  const steps = (Array.isArray(block?.steps) ? block.steps : []).filter(
    (s) => s && typeof s === "object" && typeof s.id === "string");
  const inner = []; // the nodes of child blocks, positioned relative to their group
  const groups = [];
  const edges = [];
  const ids = new Set(steps.map((s) => s.id));

  for (const step of steps) {
    g.setNode(step.id, { width: NODE_W, height: nodeHeight(step) });
    for (const child of childBlocks(step)) {
      const sub = layoutBlock(child.block, child.key, meta);
      const gid = `block:${child.key}`;
      const width = Math.max(sub.width + PAD * 2, NODE_W + PAD * 2);
      const height = sub.height + PAD * 2 + HEADER;
      g.setNode(gid, { width, height });
      groups.push({ id: gid, step, child, width, height, sub });
      g.setEdge(step.id, gid, {}, `${step.id}->${gid}`);
      edges.push({ id: `e:${step.id}->${gid}`, source: step.id, target: gid,
                   label: step.type === "loop" ? "each item" : child.label.toLowerCase(),
                   className: "ovb-edge ovb-edge--block", selectable: false, focusable: false });
      if (joins(step, ids)) {
        // The end of a branch or loop body leads on to its step's `next`: drawn from each
        // block (the join) instead of from the step itself.
        g.setEdge(gid, step.next, {}, `${gid}->${step.next}`);
        edges.push({ id: `e:${gid}->${step.next}`, source: gid, target: step.next,
                     className: "ovb-edge ovb-edge--join", focusable: child.index === 0,
                     ariaLabel: `${step.id} to ${step.next} (after ${step.type === "loop" ? "the loop" : "the branches"})`,
                     data: { step: step.id, field: "next" } });
      }
    }
  }
  for (const step of steps) {
    targetsOf(step, meta[step.type]).forEach((t, n) => {
      if (!ids.has(t.to)) return; // a dangling or cross-block reference: publishing says so
      if (t.field === "next" && joins(step, ids)) return; // drawn from its blocks
      const id = `e:${step.id}:${t.field}:${t.item ?? ""}:${n}`;
      g.setEdge(step.id, t.to, { width: t.label ? 80 : 0, height: t.label ? 20 : 0 }, id);
      edges.push({ id, source: step.id, target: t.to, label: t.label || undefined,
                   className: `ovb-edge ovb-edge--${t.kind}`, ariaLabel: `${step.id} to ${t.to}${t.label ? ` (${t.label})` : ""}`,
                   data: { step: step.id, field: t.field, item: t.item } });
    });
  }
  dagre.layout(g);
  keepBranchOrder(g, groups);

  const nodes = [];
  for (const step of steps) {
    const p = g.node(step.id);
    nodes.push({ id: step.id, type: "step", position: { x: p.x - p.width / 2, y: p.y - p.height / 2 },
                 width: p.width, height: p.height, data: { step, blockKey: key } });
  }
  for (const group of groups) {
    const p = g.node(group.id);
    nodes.push({ id: group.id, type: "block", position: { x: p.x - p.width / 2, y: p.y - p.height / 2 },
                 width: group.width, height: group.height, selectable: false, focusable: false,
                 data: { label: group.child.label, owner: group.step, blockKey: group.child.key } });
    const offsetX = (group.width - group.sub.width) / 2;
    for (const node of group.sub.nodes) {
      inner.push(node.parentId ? node : {
        ...node, parentId: group.id, extent: "parent",
        position: { x: node.position.x + offsetX, y: node.position.y + PAD + HEADER } });
    }
    edges.push(...group.sub.edges);
  }
  const graph = g.graph();
  return { nodes: nodes.concat(inner), edges, width: graph.width || 0, height: graph.height || 0 };
}

// dagre may place a parallel step's branches in any order across their rank; put them
// back left to right as the definition lists them.
function keepBranchOrder(g, groups) {
  const byOwner = new Map();
  for (const group of groups) (byOwner.get(group.step.id) || byOwner.set(group.step.id, []).get(group.step.id)).push(group);
  for (const list of byOwner.values()) {
    if (list.length < 2) continue;
    const placed = list.map((grp) => g.node(grp.id));
    if (new Set(placed.map((p) => Math.round(p.y))).size !== 1) continue; // not side by side
    const lefts = placed.map((p) => p.x - p.width / 2);
    const start = Math.min(...lefts);
    const span = Math.max(...placed.map((p) => p.x + p.width / 2)) - start;
    const widths = list.reduce((sum, grp) => sum + grp.width, 0);
    const gap = list.length > 1 ? (span - widths) / (list.length - 1) : 0;
    let x = start;
    for (const grp of list) { // in branch order
      const p = g.node(grp.id);
      p.x = x + grp.width / 2;
      x += grp.width + gap;
    }
  }
}

// Parents must come before their children in React Flow's node list.
function ordered(nodes) {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const depth = (n) => (n.parentId && byId.has(n.parentId) ? 1 + depth(byId.get(n.parentId)) : 0);
  return [...nodes].sort((a, b) => depth(a) - depth(b));
}

export function toGraph(definition, meta) {
  const laid = layoutBlock(definition, "", meta);
  return { nodes: ordered(laid.nodes), edges: laid.edges };
}
