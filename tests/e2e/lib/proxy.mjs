// A loopback TCP proxy between a visitor's browser and the broker, so that a test can break the
// live channel the way the world does: drop every WebSocket at once (a network hiccup, a proxy
// restart: the page sees 1006), close them with 1012 "service restart" as an instance handing its
// visitors over would, or refuse new WebSockets for a while (HTTP still passes, so the page falls
// back to polling). Everything else is passed through byte for byte.
import net from 'node:net';

// A server's close frame (FIN + opcode 8, unmasked, 2-byte payload): the status code only.
const closeFrame = code => Buffer.from([0x88, 0x02, code >> 8, code & 0xff]);

export async function startProxy(targetPort) {
  const pairs = new Set();
  let refusing = false;

  const server = net.createServer(client => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair = { client, upstream, websocket: false, closing: false };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    // While a close frame is on its way to the page, the broker's side must not cut it short.
    upstream.on('error', end).on('close', () => pair.closing || end());
    let first = true;
    client.on('data', chunk => {
      if (first) {
        first = false;
        // Browsers open every WebSocket on a connection of its own, with this request line.
        pair.websocket = /^GET \/api\/session\/ws[ ?]/.test(chunk.toString('latin1', 0, 64));
        if (pair.websocket && refusing) return end();
      }
      if (!pair.closing) upstream.write(chunk);
    });
    upstream.pipe(client);
  });
  await new Promise((resolve, reject) => server.listen(0, '127.0.0.1', resolve).once('error', reject));
  const { port } = server.address();

  const websockets = () => [...pairs].filter(pair => pair.websocket);
  return {
    url: `http://127.0.0.1:${port}`,
    get openWebSockets() {
      return websockets().length;
    },
    // Cuts every live channel at once, both ways: the page and the broker each see the peer gone.
    dropWebSockets() {
      const dropped = websockets();
      for (const { client, upstream } of dropped) {
        client.destroy();
        upstream.destroy();
      }
      return dropped.length;
    },
    // What a restarting instance sends its visitors: close 1012, come back at once.
    restartWebSockets() {
      const closed = websockets();
      for (const pair of closed) {
        pair.closing = true;
        pair.upstream.unpipe(pair.client);
        pair.client.end(closeFrame(1012));  // the broker's side goes when the page's does
      }
      return closed.length;
    },
    refuseWebSockets(on) {
      refusing = on;
    },
    async close() {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise(resolve => server.close(resolve));
    },
  };
}
