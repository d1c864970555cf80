// The builder's keyboard: Ctrl+S saves (what is being typed too), Ctrl+Z / Ctrl+Shift+Z /
// Ctrl+Y undo and redo outside a field, Delete removes what is selected on the canvas.
import { useEffect, useRef } from "react";
import { flushSync } from "react-dom";

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable
    || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

// `onDelete()` returns whether it removed something (and the key is then consumed).
export function useShortcuts({ canEdit, onSave, onUndo, onRedo, onDelete }) {
  const handlers = useRef(null);
  handlers.current = { onSave, onUndo, onRedo, onDelete };
  useEffect(() => {
    const onKey = (e) => {
      const h = handlers.current;
      const mod = e.ctrlKey || e.metaKey;
      if (mod && e.key === "s" && canEdit) {
        e.preventDefault();
        // Leaving the field commits what was typed; flushSync renders it before saving.
        if (e.target instanceof HTMLElement) flushSync(() => e.target.blur());
        handlers.current.onSave(); // the handlers of that render
      } else if (mod && (e.key === "z" || e.key === "Z") && !typing(e.target)) {
        e.preventDefault();
        if (e.shiftKey) h.onRedo();
        else h.onUndo();
      } else if (mod && e.key === "y" && !typing(e.target)) {
        e.preventDefault();
        h.onRedo();
      } else if ((e.key === "Delete" || e.key === "Backspace") && canEdit && !typing(e.target)
                 && e.target.closest?.(".ovb-canvas")) {
        if (h.onDelete()) e.preventDefault();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [canEdit]);
}
