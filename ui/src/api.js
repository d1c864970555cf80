// The public API (/api/v1), called with the session cookie like any browser client:
// the tenant header names the workspace and writes carry the CSRF token.
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `request failed (${status})`);
    this.status = status;
    this.problem = problem || {};
  }
}

export function makeApi({ base, tenant, csrf }) {
  return async function call(method, path, body) {
    const headers = { Accept: "application/json" };
    if (tenant) headers["X-Overture-Tenant"] = tenant;
    if (method !== "GET") headers["X-CSRFToken"] = csrf;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(`${base}${path}`, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = res.status === 204 ? "" : await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  };
}
