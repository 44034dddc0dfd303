// Live updates over Socket.IO: the server puts the socket in one room per account of the
// token, and sends `document.created` and `document.updated` there, whichever API node or
// worker the change came from.

/**
 * Connect with the portal token. Callbacks:
 *   onStatus("on" | "reconnecting" | "unavailable"), onCreated(event), onUpdated(event),
 *   onRefused("expired" | "invalid"), onResync() after a reconnect (events may have been missed).
 */
export function connectLive({ path, token, onStatus, onCreated, onUpdated, onRefused, onResync }) {
  if (typeof window.io !== "function") {
    onStatus("unavailable");
    return null;
  }
  const socket = window.io({ path, auth: { token } });
  let connectedBefore = false;

  socket.on("connect", () => {
    onStatus("on");
    if (connectedBefore) onResync();
    connectedBefore = true;
  });
  socket.on("disconnect", (reason) => {
    onStatus("reconnecting");
    // The server ends the connection when the token expires; the client would not retry on
    // its own after that. Connecting again either works or is refused with the reason.
    if (reason === "io server disconnect") socket.connect();
  });
  socket.on("connect_error", (error) => {
    const message = String(error && error.message);
    if (message.startsWith("unauthorized")) {
      socket.disconnect();
      onRefused(/expired/i.test(message) ? "expired" : "invalid");
      return;
    }
    onStatus("reconnecting");
  });
  socket.on("document.created", onCreated);
  socket.on("document.updated", onUpdated);
  return socket;
}
