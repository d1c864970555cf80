// An action step's connection, picked by name from the workspace's connections (the
// public API's GET /connections), only those of the action's app once one is chosen; the
// step keeps the connection's id. With none to pick, a link to create one in the console
// (in a new tab, so the draft stays open) and a button that reads the list again.
import { TextInput } from "./fields.jsx";

const STATE = { pending: "not connected yet", broken: "broken: reconnect it" };

function NoConnection({ id, action, newUrl, reload, disabled }) {
  const app = action?.connector;
  const href = action ? `${newUrl}?connector=${encodeURIComponent(action.connectorKey)}` : newUrl;
  return (
    <div className="ovb-field__empty" id={id}>
      <p>
        {app ? `No ${app} connection in this workspace yet` : "No connection in this workspace yet"}
        {action && !action.needsConnection ? `; ${app} also works without one.` : "."}
      </p>
      {!disabled && (
        <p>
          <a href={href} target="_blank" rel="noopener">Create a connection<span className="ovb-sr"> (opens a new tab)</span></a>,
          then <button type="button" className="ovb-link-btn" onClick={reload}>reload the list</button>.
        </p>
      )}
    </div>
  );
}

export function ConnectionField({ id, value, onCommit, disabled, action, connections, newUrl }) {
  const { items, error, loading, reload } = connections;
  if (error) { // not listed (the role may not read connections, or the API failed): the id itself
    return (
      <>
        <TextInput id={id} value={value} onCommit={onCommit} disabled={disabled} mono />
        <p className="ovb-field__hint">The workspace&rsquo;s connections could not be listed: {error}</p>
      </>
    );
  }
  if (loading) {
    return (
      <select id={id} className="ovb-input" value={value || ""} disabled>
        <option value={value || ""}>Loading connections…</option>
      </select>
    );
  }
  const app = action?.connectorKey;
  const fits = items.filter((c) => !app || c.connector_key === app);
  const chosen = value && !fits.some((c) => c.id === value) ? items.find((c) => c.id === value) : undefined;
  const named = (c) => `${c.name}${app ? "" : ` (${c.connector_key})`}${STATE[c.status] ? `: ${STATE[c.status]}` : ""}`;
  const emptyId = `${id}-none`;
  return (
    <>
      <select id={id} className="ovb-input" value={value || ""} disabled={disabled}
              aria-describedby={fits.length ? undefined : emptyId}
              onChange={(e) => onCommit(e.target.value || undefined)}>
        <option value="">{action && !action.needsConnection ? "— none (not needed) —" : "— choose a connection —"}</option>
        {fits.map((c) => <option key={c.id} value={c.id}>{named(c)}</option>)}
        {value && !fits.some((c) => c.id === value) && (
          <option value={value}>
            {chosen ? `${chosen.name} (a ${chosen.connector_key} connection, not this app's)` : "A connection that no longer exists"}
          </option>
        )}
      </select>
      {fits.length === 0 && <NoConnection id={emptyId} action={action} newUrl={newUrl} reload={reload}
                                          disabled={disabled} />}
    </>
  );
}
