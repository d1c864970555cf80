// Line icons for the step types (SVG: no icon font, nothing fetched).
const circle = (cx, cy, r) => `M${cx - r} ${cy}a${r} ${r} 0 1 0 ${2 * r} 0a${r} ${r} 0 1 0 ${-2 * r} 0`;

const PATHS = {
  agent: "M12 3l1.9 5.1L19 10l-5.1 1.9L12 17l-1.9-5.1L5 10l5.1-1.9zM18.5 16l.7 1.8 1.8.7-1.8.7-.7 1.8-.7-1.8-1.8-.7 1.8-.7z",
  classify: "M3 12h5l4-6h9M8 12l4 6h9M18 3l3 3-3 3M18 15l3 3-3 3",
  supervisor: `${circle(12, 6, 2.5)}M12 8.5V12M6 16v-4h12v4${circle(6, 18, 2)}${circle(18, 18, 2)}`,
  review_loop: "M4 12a8 8 0 0 1 13.7-5.7L20 8.5M20 4v4.5h-4.5M20 12a8 8 0 0 1-13.7 5.7L4 15.5M4 20v-4.5h4.5",
  group: `${circle(8, 9, 2.5)}${circle(16, 9, 2.5)}M3.5 19a4.5 4.5 0 0 1 9 0M11.5 19a4.5 4.5 0 0 1 9 0`,
  condition: "M12 3l9 9-9 9-9-9z",
  router: "M4 12h6M10 12l4-6h6M10 12l4 6h6M10 12h10",
  parallel: "M4 5h4v14H4zM10 5h4v14h-4zM16 5h4v14h-4z",
  loop: "M17 2l3 3-3 3M4 11V9a4 4 0 0 1 4-4h12M7 22l-3-3 3-3M20 13v2a4 4 0 0 1-4 4H4",
  stop: "M7 7h10v10H7z",
  subworkflow: "M4 9h11v11H4zM9 4h11v11",
  approval: "M20 6L9 17l-5-5",
  transform: "M8 6l-5 6 5 6M16 6l5 6-5 6M13.5 4l-3 16",
  delay: `${circle(12, 12, 8.5)}M12 7.5V12l3 2`,
  action: "M13 2L4 14h7l-1 8 9-12h-7z",
};

export function StepIcon({ type, size = 18 }) {
  return (
    <svg viewBox="0 0 24 24" width={size} height={size} fill="none" stroke="currentColor" strokeWidth="2"
         strokeLinecap="round" strokeLinejoin="round" aria-hidden="true" focusable="false">
      <path d={PATHS[type] || circle(12, 12, 6)} />
    </svg>
  );
}
