// Opens a page in headless Chromium (the Debian package, never a downloaded browser) whose script
// subscribes to the daemon's stream with `new EventSource(url)`, and reports what the page sees as
// JSON lines on stdout:
//   {"kind":"ready"}                                  the page is loaded
//   {"kind":"open"} / {"kind":"error","readyState":n} EventSource onopen / onerror
//   {"kind":"message","lastEventId":"3","data":"…"}   EventSource onmessage
//   {"kind":"request","url":"…","lastEventId":"3"}     each stream request the browser sent (Last-Event-ID or null)
//   {"kind":"fatal","message":"…"}                    the script failed
// Usage: node eventsource.mjs <stream-url> <page-port>; it ends when stdin closes or reads "quit".
// Driven by tests/AotEvents.Blackbox.Tests/BrowserTests.cs.
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const [streamUrl, pagePortText] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const report = (o) => process.stdout.write(JSON.stringify(o) + '\n');

if (!streamUrl || !pagePortText) {
  report({ kind: 'fatal', message: 'usage: node eventsource.mjs <stream-url> <page-port>' });
  process.exit(2);
}

const page_html = `<!doctype html>
<meta charset="utf-8"><title>aotevents EventSource</title>
<script>
  const source = new EventSource(${JSON.stringify(streamUrl)});
  source.onopen = () => window.reportEvent({ kind: 'open' });
  source.onerror = () => window.reportEvent({ kind: 'error', readyState: source.readyState });
  source.onmessage = (e) => window.reportEvent({ kind: 'message', lastEventId: e.lastEventId, data: e.data });
  source.addEventListener('dropped', (e) => window.reportEvent({ kind: 'dropped', data: e.data }));
</script>`;

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(page_html);
});

let context;
let userDataDir;
async function shutdown(code) {
  try { if (context) await context.close(); } catch { /* already gone */ }
  server.close();
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  process.exit(code);
}

const watchdog = setTimeout(() => {
  report({ kind: 'fatal', message: 'watchdog: no quit within 120 s' });
  shutdown(3);
}, 120_000);
watchdog.unref();

try {
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(pagePortText), '127.0.0.1', resolve);
  });
  if (!fs.existsSync(executablePath)) throw new Error(`chromium not found at ${executablePath}`);
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'aotevents-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = context.pages()[0] ?? await context.newPage();
  page.on('request', async (request) => {
    if (!request.url().includes('/events/stream')) return;
    let headers = request.headers();
    try {
      headers = await Promise.race([request.allHeaders(), new Promise((r) => setTimeout(() => r(headers), 2000))]);
    } catch { /* keep the provisional headers */ }
    report({ kind: 'request', url: request.url(), lastEventId: headers['last-event-id'] ?? null });
  });
  page.on('console', (m) => report({ kind: 'console', text: m.text() }));
  await page.exposeFunction('reportEvent', (o) => report(o));
  await page.goto(`http://127.0.0.1:${pagePortText}/`);
  report({ kind: 'ready' });
} catch (e) {
  report({ kind: 'fatal', message: String(e && e.stack || e) });
  await shutdown(1);
}

const input = readline.createInterface({ input: process.stdin });
input.on('line', (line) => { if (line.trim() === 'quit') shutdown(0); });
input.on('close', () => shutdown(0));
