// The side panel when no step is selected: every step of the workflow as a list (a way to
// reach any step without the canvas), with its problems, and how the keyboard works.
import { typeInfo } from "./catalog.js";
import { StepIcon } from "./icons.jsx";

export function StepList({ steps, errorsByStep, onPick }) {
  return (
    <aside className="ovb-inspector ovb-overview" aria-labelledby="ovb-steps-title">
      <div className="ovb-inspector__head">
        <div>
          <p className="ovb-inspector__type">Workflow</p>
          <h2 id="ovb-steps-title">Steps</h2>
        </div>
      </div>
      <div className="ovb-inspector__scroll">
        <ul className="ovb-steps">
          {steps.map(({ step, blockKey }) => {
            const info = typeInfo(step.type);
            const n = (errorsByStep[step.id] || []).length;
            return (
              <li key={step.id} className={blockKey ? "is-nested" : undefined}>
                <button type="button" className="ovb-steps__item" onClick={() => onPick(step.id)}>
                  <span className={`ovb-palette__glyph ovb-node--${info.group}`} aria-hidden="true"><StepIcon type={step.type} size={14} /></span>
                  <span className="ovb-steps__name">{step.name || step.id}</span>
                  <span className="ovb-steps__type">{info.label}</span>
                  {n > 0 && <span className="ovb-pill is-error">{n} problem{n > 1 ? "s" : ""}</span>}
                </button>
              </li>
            );
          })}
        </ul>
        <p className="ovb-muted ovb-help">
          Tab to a step or a connection on the canvas and press Enter to select it;
          <kbd>Del</kbd> deletes it; connect steps with the Flow fields of a step&rsquo;s panel (or drag
          between handles);
          <kbd>Ctrl</kbd>+<kbd>Z</kbd> undoes, <kbd>Ctrl</kbd>+<kbd>Shift</kbd>+<kbd>Z</kbd> redoes.
        </p>
      </div>
    </aside>
  );
}
