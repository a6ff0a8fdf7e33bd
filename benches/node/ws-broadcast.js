// The shootout's Node peer: a `ws` broadcast server. Every text frame a
// client sends goes to every connected client.
//
//   (cd benches/node && npm ci) && node benches/node/ws-broadcast.js 9002
const { WebSocketServer } = require("ws");

const port = Number(process.argv[2] || 9002);
const wss = new WebSocketServer({ host: "127.0.0.1", port });
wss.on("connection", (socket) => {
  socket.on("message", (data, isBinary) => {
    for (const client of wss.clients) {
      if (client.readyState === 1) client.send(data, { binary: isBinary });
    }
  });
});
