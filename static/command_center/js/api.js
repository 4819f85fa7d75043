// The only way the page reads data: GET requests to /api/admin/observability/*.

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }

  // What the API said, in words: "invalid parameters (trace_id: …)".
  get explanation() {
    const detail = this.body?.detail;
    const parts = detail && typeof detail === "object"
      ? Object.entries(detail).map(([key, value]) => `${key}: ${value}`) : [];
    if (this.status === 0) return "the API cannot be reached";
    return parts.length ? `${this.message} (${parts.join("; ")})` : this.message;
  }

  get unreachable() {
    return this.status === 0 || this.status >= 500;
  }
}

function queryString(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export class Api {
  // onStatus(ok, error) lets the page show or clear its degraded banner.
  constructor(base, onStatus) {
    this.base = base;
    this.onStatus = onStatus;
  }

  url(path, params = {}) {
    return `${this.base}${path}${queryString(params)}`;
  }

  async get(path, params = {}) {
    let response;
    try {
      response = await fetch(this.url(path, params), {
        credentials: "same-origin", headers: { Accept: "application/json" },
      });
    } catch (networkError) {
      const error = new ApiError(0, { error: networkError.message });
      this.onStatus(false, error);
      throw error;
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const error = new ApiError(response.status, body);
      this.onStatus(!error.unreachable && response.status !== 401, error);
      throw error;
    }
    this.onStatus(true, null);
    return body;
  }
}
