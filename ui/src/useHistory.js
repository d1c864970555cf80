// The builder's one state: the definition, with undo and redo. `current` always holds the
// latest definition, for handlers that run before the next render.
import { useCallback, useReducer, useRef } from "react";

const LIMIT = 200;

function history(state, action) {
  switch (action.type) {
    case "load":
      return { past: [], present: action.definition, future: [] };
    case "change":
      if (JSON.stringify(action.definition) === JSON.stringify(state.present)) return state;
      return { past: [...state.past, state.present].slice(-LIMIT), present: action.definition, future: [] };
    case "undo":
      if (!state.past.length) return state;
      return { past: state.past.slice(0, -1), present: state.past.at(-1), future: [state.present, ...state.future] };
    case "redo":
      if (!state.future.length) return state;
      return { past: [...state.past, state.present], present: state.future[0], future: state.future.slice(1) };
    default:
      return state;
  }
}

export function useHistory() {
  const [state, dispatch] = useReducer(history, { past: [], present: null, future: [] });
  const current = useRef(null);
  current.current = state.present;
  return {
    definition: state.present,
    current,
    canUndo: state.past.length > 0,
    canRedo: state.future.length > 0,
    load: useCallback((definition) => dispatch({ type: "load", definition }), []),
    change: useCallback((definition) => dispatch({ type: "change", definition }), []),
    undo: useCallback(() => dispatch({ type: "undo" }), []),
    redo: useCallback(() => dispatch({ type: "redo" }), []),
  };
}
