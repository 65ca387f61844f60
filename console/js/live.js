// Live changes: a stream that says "something changed"; the console then re-reads what it shows.
// Locally it is Server-Sent Events from the stand-in (read with fetch, so the bearer token goes in
// a header, never in the URL). Deployed (config.json's live.kind "websocket") it is the API Gateway
// WebSocket API, with the same events; a browser cannot set headers on a WebSocket, so the ID token
// goes in the `token` query parameter (the channel's authorizer checks it, its logs leave it out).
// When the stream drops, the console reconnects and, meanwhile, refreshes from the API every few
// seconds, so it never falls behind for long.

const RETRY_MS = 2000;

export function connectLive(live, session, { onChange, onState }) {
  if (live && live.kind === "websocket") return connectSocket(live, session, { onChange, onState });
  if (!live || live.kind !== "events") {
    onState(false);
    return () => {};
  }
  let stopped = false;
  let controller = null;

  async function run() {
    while (!stopped) {
      controller = new AbortController();
      try {
        const reply = await fetch(live.url, {
          headers: { Accept: "text/event-stream", Authorization: `Bearer ${session.token}`, ...(session.sharedToken && session.agentId ? { "X-Agent-Id": session.agentId } : {}) },
          signal: controller.signal, cache: "no-store",
        });
        if (!reply.ok || !reply.body) throw new Error(`live ${reply.status}`);
        const reader = reply.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            if (/^event: ready$/m.test(block)) {
              onState(true);
              onChange(); // whatever happened while disconnected
            } else if (/^data: /m.test(block)) {
              onChange();
            }
          }
        }
      } catch {
        // dropped or refused: fall through to the retry
      }
      if (stopped) return;
      onState(false);
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }

  run();
  return () => {
    stopped = true;
    controller?.abort();
  };
}

function connectSocket(live, session, { onChange, onState }) {
  let stopped = false;
  let socket = null;
  let retry = null;

  function open() {
    const url = new URL(live.url);
    url.searchParams.set("token", session.token); // read at each connect: a refreshed token is used
    socket = new WebSocket(url);
    socket.onopen = () => {
      onState(true);
      onChange(); // whatever happened while disconnected
    };
    socket.onmessage = (message) => {
      try {
        if (JSON.parse(message.data).type === "changed") onChange();
      } catch {
        // not an event of ours
      }
    };
    socket.onclose = () => {
      if (stopped) return;
      onState(false);
      retry = setTimeout(open, RETRY_MS);
    };
  }

  open();
  return () => {
    stopped = true;
    clearTimeout(retry);
    socket?.close();
  };
}
