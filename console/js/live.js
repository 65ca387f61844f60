// Live changes: a WebSocket that says "something changed"; the console then re-reads what it shows.
// Deployed it is the API Gateway WebSocket API (config.json's live.url, wss://…); locally the
// stand-in serves the same protocol on the API's origin (live.url "/live", made ws:// here). A
// browser cannot set headers on a WebSocket, so the token goes in the `token` query parameter, in
// both (the channel's authorizer checks it, its logs leave it out). When the socket drops, the
// console reconnects and, meanwhile, refreshes from the API every few seconds, so it never falls
// behind for long.

const RETRY_MS = 2000;

export function connectLive(live, session, { onChange, onState }) {
  if (!live || live.kind !== "websocket") {
    onState(false);
    return () => {};
  }
  return connectSocket(live, session, { onChange, onState });
}

// "/live" on http://host:port is ws://host:port/live (https: wss:); a wss:// URL stays as it is.
export function socketUrl(url, base) {
  const resolved = new URL(url, base);
  if (resolved.protocol === "http:") resolved.protocol = "ws:";
  if (resolved.protocol === "https:") resolved.protocol = "wss:";
  return resolved;
}

function connectSocket(live, session, { onChange, onState }) {
  let stopped = false;
  let socket = null;
  let retry = null;

  function open() {
    const url = socketUrl(live.url, window.location.href);
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
