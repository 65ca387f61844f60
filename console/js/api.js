// The agent API: on this origin in local mode, at config.json's "api" URL when deployed. Errors
// arrive as {"code", "message"}; they become ApiError.

let base = "/api";

export function useApiAt(url) {
  base = url ? `${url.replace(/\/$/, "")}/api` : "/api";
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code);
    this.status = status;
    this.code = code;
  }
}

export class Api {
  constructor(session, onUnauthorized) {
    this.session = session;
    this.onUnauthorized = onUnauthorized;
  }

  async request(method, path, body) {
    const headers = { Accept: "application/json", Authorization: `Bearer ${this.session.token}` };
    if (this.session.agentId && this.session.sharedToken) headers["X-Agent-Id"] = this.session.agentId;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method === "POST" && body && body.idempotencyKey) {
      headers["Idempotency-Key"] = body.idempotencyKey;
      body = body.payload;
    }
    let reply;
    try {
      reply = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (error) {
      throw new ApiError(0, "network", error.message);
    }
    const answer = await reply.json().catch(() => ({}));
    if (!reply.ok) {
      if (reply.status === 401 && this.onUnauthorized) this.onUnauthorized();
      throw new ApiError(reply.status, answer.code || String(reply.status), answer.message || reply.statusText);
    }
    return answer;
  }

  get(path) { return this.request("GET", path); }
  post(path, body = {}) { return this.request("POST", path, body); }
  put(path, body = {}) { return this.request("PUT", path, body); }

  chats(number, { filter, query, cursor, me }) {
    const params = new URLSearchParams({ limit: "30" });
    if (cursor) params.set("cursor", cursor);
    if (filter === "mine") {
      params.set("assignee", me);
      return this.get(`/chats?${params}`);
    }
    params.set("phone_number_id", number);
    if (filter && filter !== "all") params.set("mode", filter);
    if (query) params.set("q", query);
    return this.get(`/inbox?${params}`);
  }

  chat(chatId) { return this.get(`/chats/${encodeURIComponent(chatId)}`); }

  messages(chatId, cursor) {
    const params = new URLSearchParams({ limit: "100" });
    if (cursor) params.set("cursor", cursor);
    return this.get(`/chats/${encodeURIComponent(chatId)}/messages?${params}`);
  }

  send(chatId, payload) {
    return this.post(`/chats/${encodeURIComponent(chatId)}/messages`, { payload, idempotencyKey: crypto.randomUUID() });
  }

  act(chatId, action, body = {}) { return this.post(`/chats/${encodeURIComponent(chatId)}/${action}`, body); }
  number(id) { return this.get(`/numbers/${encodeURIComponent(id)}`); }
  templates(number) { return this.get(`/templates?phone_number_id=${encodeURIComponent(number)}`); }
  syncTemplates(number) { return this.post(`/templates/sync?phone_number_id=${encodeURIComponent(number)}`); }
  agents() { return this.get("/agents"); }
  dashboard(number, days) { return this.get(`/dashboard?phone_number_id=${encodeURIComponent(number)}&days=${days}`); }
  costs({ from, to, number, groupBy }) {
    const params = new URLSearchParams({ from, to, group_by: groupBy });
    if (number) params.set("phone_number_id", number);
    return this.get(`/costs?${params}`);
  }

  audit({ user, chat_id: chatId, action, from, to, limit, cursor }) {
    const params = new URLSearchParams({ limit: String(limit || 25) });
    Object.entries({ user, chat_id: chatId, action, from, to, cursor }).forEach(([k, v]) => v && params.set(k, v));
    return this.get(`/audit?${params}`);
  }

  setStatus(agentId, status) { return this.put(`/agents/${encodeURIComponent(agentId)}/status`, { status }); }
}
