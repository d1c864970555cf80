// The side panel's form controls: each keeps its own text while typing and writes to the
// definition when the field is left (one undo step per edit).
import { useEffect, useRef, useState } from "react";

// Local text while typing; the definition changes when the field is left (one undo step).
export function useFieldText(value, toText) {
  const [text, setText] = useState(toText(value));
  const last = useRef(value);
  useEffect(() => {
    if (JSON.stringify(last.current) !== JSON.stringify(value)) {
      last.current = value;
      setText(toText(value));
    }
  }, [value, toText]);
  return [text, setText];
}

export const asText = (v) => (v === undefined || v === null ? "" : String(v));
export const asJson = (v) => (v === undefined ? "" : JSON.stringify(v, null, 2));
export const asList = (v) => (Array.isArray(v) ? v.join(", ") : "");

export function Field({ id, label, hint, error, children, badge, required }) {
  return (
    <div className={error ? "ovb-field has-error" : "ovb-field"}>
      <label htmlFor={id} className="ovb-field__label">
        {label}{badge && <span className="ovb-badge">{badge}</span>}
        {required && <span className="ovb-required">required</span>}
      </label>
      {children}
      {hint && !error && <p className="ovb-field__hint" id={`${id}-hint`}>{hint}</p>}
      {error && <p className="ovb-field__error" id={`${id}-error`} role="alert">{error}</p>}
    </div>
  );
}

export function TextInput({ id, value, onCommit, multiline, mono, disabled, placeholder, parse, list }) {
  const [text, setText] = useFieldText(value, asText);
  const commit = () => {
    const next = parse ? parse(text) : text;
    if (asText(next) !== asText(value)) onCommit(next === "" ? undefined : next);
  };
  const props = {
    id, value: text, disabled, placeholder, list, className: mono ? "ovb-input is-mono" : "ovb-input",
    onChange: (e) => setText(e.target.value), onBlur: commit,
  };
  if (multiline) return <textarea rows={4} {...props} />;
  return <input type="text" {...props} onKeyDown={(e) => e.key === "Enter" && commit()} />;
}

export function JsonInput({ id, value, onCommit, disabled, setError }) {
  const [text, setText] = useFieldText(value, asJson);
  const commit = () => {
    if (text.trim() === "") {
      setError(null);
      if (value !== undefined) onCommit(undefined);
      return;
    }
    try {
      const parsed = JSON.parse(text);
      setError(null);
      if (JSON.stringify(parsed) !== JSON.stringify(value)) onCommit(parsed);
    } catch {
      setError("Not valid JSON yet: check quotes and commas.");
    }
  };
  return (
    <textarea id={id} rows={Math.min(10, Math.max(3, text.split("\n").length))} value={text}
              className="ovb-input is-mono" disabled={disabled} spellCheck={false}
              onChange={(e) => setText(e.target.value)} onBlur={commit} />
  );
}

// A CEL field: checked by the API (POST /expressions/check) a moment after typing stops.
export function CelInput({ id, value, onCommit, disabled, api, setProblem }) {
  const [text, setText] = useFieldText(value, asText);
  useEffect(() => {
    if (!text.trim()) return setProblem(null);
    let live = true;
    const timer = setTimeout(() => {
      api("POST", "/expressions/check", { expression: text })
        .then((r) => live && setProblem(r.valid ? null : r.problems.join("; ")))
        .catch(() => live && setProblem(null));
    }, 350);
    return () => { live = false; clearTimeout(timer); };
  }, [text, api, setProblem]);
  const commit = () => {
    if (text !== asText(value)) onCommit(text === "" ? undefined : text);
  };
  return (
    <input type="text" id={id} value={text} disabled={disabled} placeholder="input.amount > 100"
           className="ovb-input is-mono" spellCheck={false} autoComplete="off"
           onChange={(e) => setText(e.target.value)} onBlur={commit}
           onKeyDown={(e) => e.key === "Enter" && commit()} />
  );
}

