// The mailbox API as the page uses it: every call carries `Authorization: Bearer <token>`.
// A 401 means the token is no longer accepted: `onUnauthenticated` sends the person back to
// the sign-in page instead of leaving a broken page behind.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function errorOf(response) {
  try {
    const body = await response.json();
    if (body && body.error) return body.error;
  } catch {
    // not JSON: fall through to a generic message
  }
  return { code: "error", message: `The service answered ${response.status}.` };
}

export function createApi({ base, token, onUnauthenticated }) {
  async function request(method, path, { query = {}, raw = false } = {}) {
    const url = new URL(base + path, location.origin);
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
    }
    let response;
    try {
      response = await fetch(url, {
        method,
        headers: { Authorization: `Bearer ${token}`, Accept: raw ? "*/*" : "application/json" },
        cache: "no-store",
      });
    } catch {
      throw new ApiError(0, "network", "The mailbox service cannot be reached. Please try again.");
    }
    if (response.status === 401) {
      const error = await errorOf(response);
      onUnauthenticated(/expired/i.test(error.message || "") ? "expired" : "invalid");
      throw new ApiError(401, "unauthenticated", error.message);
    }
    if (!response.ok) {
      const error = await errorOf(response);
      throw new ApiError(response.status, error.code, error.message);
    }
    return raw ? response : response.json();
  }

  const doc = (id) => `/documents/${encodeURIComponent(id)}`;
  return {
    list: (query) => request("GET", "/documents", { query }),
    detail: (id) => request("GET", doc(id)),
    content: (id) => request("GET", `${doc(id)}/content`, { raw: true }),
    setRead: (id, read) => request(read ? "POST" : "DELETE", `${doc(id)}/read`),
    setArchived: (id, archived) => request(archived ? "POST" : "DELETE", `${doc(id)}/archive`),
    unreadCount: () => request("GET", "/unread-count"),
  };
}
