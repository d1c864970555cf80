// Step types and connector actions to add. Each entry is a button: Tab to it, Enter adds.
import { useMemo, useState } from "react";
import { GROUPS, typeInfo } from "./catalog.js";
import { StepIcon } from "./icons.jsx";

export function Palette({ types, actions, onAdd, afterLabel }) {
  const [query, setQuery] = useState("");
  const q = query.trim().toLowerCase();
  const groups = useMemo(() => {
    const match = (...texts) => !q || texts.some((t) => String(t || "").toLowerCase().includes(q));
    const out = GROUPS.map((g) => ({ ...g, items: [] }));
    for (const type of types) {
      const info = typeInfo(type);
      if (!match(type, info.label, info.help)) continue;
      (out.find((g) => g.key === info.group) || out[1]).items.push({
        key: `type:${type}`, label: info.label, help: info.help, icon: type, group: info.group,
        add: () => onAdd(type, {}),
      });
    }
    const apps = out.find((g) => g.key === "apps");
    for (const action of actions) {
      if (!match(action.key, action.name, action.connector)) continue;
      apps.items.push({
        key: `action:${action.key}`, label: action.name, help: action.connector, icon: "action",
        group: "apps", add: () => onAdd("action", { action: action.key }),
      });
    }
    return out.filter((g) => g.items.length);
  }, [types, actions, q, onAdd]);

  return (
    <nav className="ovb-palette" aria-label="Add a step">
      <div className="ovb-palette__head">
        <h2>Add a step</h2>
        <p className="ovb-palette__where">{afterLabel}</p>
        <label className="ovb-sr" htmlFor="ovb-palette-search">Search steps and actions</label>
        <input id="ovb-palette-search" type="search" className="ovb-input ovb-search"
               placeholder="Search steps and actions" value={query}
               onChange={(e) => setQuery(e.target.value)} />
      </div>
      <div className="ovb-palette__list">
        {groups.map((group) => (
          <section key={group.key} aria-labelledby={`ovb-pg-${group.key}`}>
            <h3 id={`ovb-pg-${group.key}`}>{group.label}</h3>
            <ul>
              {group.items.map((item) => (
                <li key={item.key}>
                  <button type="button" className="ovb-palette__item" onClick={item.add}
                          data-palette={item.key}>
                    <span className={`ovb-palette__glyph ovb-node--${item.group}`} aria-hidden="true">
                      <StepIcon type={item.icon} size={16} />
                    </span>
                    <span className="ovb-palette__text">
                      <span className="ovb-palette__label">{item.label}</span>
                      <span className="ovb-palette__help">{item.help}</span>
                    </span>
                  </button>
                </li>
              ))}
            </ul>
          </section>
        ))}
        {groups.length === 0 && <p className="ovb-muted">Nothing matches “{query}”.</p>}
      </div>
    </nav>
  );
}
