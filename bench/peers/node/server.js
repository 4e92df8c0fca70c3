// Node.js `ws` peer for bench/compare: WebSocket server on any path and a
// publish endpoint on the same port.
//   POST /publish                        body sent as is to every client
//   POST /api/groups/notifications/send  body's "message" re-encoded (as herald)
// Usage: node server.js PORT   (prints "node-ws listening on http://127.0.0.1:PORT")
'use strict';
const http = require('http');
const { WebSocketServer } = require('ws');

const port = parseInt(process.argv[2] || '0', 10);
const server = http.createServer((req, res) => {
	if (req.method !== 'POST') {
		res.writeHead(405, { 'Content-Type': 'application/json' });
		res.end('{"error":"method"}');
		return;
	}
	const chunks = [];
	let size = 0;
	req.on('data', (c) => {
		size += c.length;
		if (size > 1 << 20) req.destroy();
		else chunks.push(c);
	});
	req.on('end', () => {
		let payload = Buffer.concat(chunks);
		if (req.url !== '/publish') {
			try {
				payload = JSON.stringify(JSON.parse(payload).message);
			} catch (e) {
				res.writeHead(400, { 'Content-Type': 'application/json' });
				res.end('{"error":"bad JSON"}');
				return;
			}
		}
		for (const ws of wss.clients) ws.send(payload, { binary: false });
		res.writeHead(202, { 'Content-Type': 'application/json' });
		res.end('{}');
	});
});
server.keepAliveTimeout = 0;
const wss = new WebSocketServer({ server, perMessageDeflate: false, clientTracking: true });
wss.on('connection', (ws) => {
	ws.on('error', () => {});
});
server.listen(port, '127.0.0.1', () => {
	console.log(`node-ws listening on http://127.0.0.1:${server.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
