// idle-conns.mjs PORT N PID - opens N keep-alive connections to the gateway,
// sends one request on each, keeps them open and idle, and prints the
// gateway's resident memory before and after.
import net from 'node:net';
import { readFileSync } from 'node:fs';
const [port, n, pid] = process.argv.slice(2).map(Number);
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const before = rss();
const req = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
const socks = [];
let answered = 0;
await Promise.all(Array.from({ length: n }, () => new Promise((resolve) => {
  const s = net.connect(port, '127.0.0.1', () => s.write(req));
  s.once('data', () => { answered++; resolve(); });
  s.on('error', resolve);
  socks.push(s);
})));
await new Promise((r) => setTimeout(r, 500));
const after = rss();
console.log(`idle keep-alive connections: ${answered}/${n} answered; gateway RSS ${(before / 1024).toFixed(1)} MiB before, ${(after / 1024).toFixed(1)} MiB with them open`);
socks.forEach((s) => s.destroy());
