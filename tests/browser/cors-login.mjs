// A page on another origin logs in to zapin the way Evolution Manager does and lists the
// instances, with the browser's own fetch (CORS preflights included): Debian's chromium driven
// by playwright-core, one launch, a fresh profile, no network beyond loopback.
//
// Usage: node cors-login.mjs '<json>' with
//   {"chromium": "/usr/bin/chromium", "api": "http://127.0.0.1:Z", "apikey": "...",
//    "pages": [{"url": "http://127.0.0.1:A/", "instance": "from-a"}, ...]}
// Prints one JSON line: {"pages": [{origin, welcome, verify, create, list, preflights}, ...]}.
// Each call is {status, body} or {error} when the browser refused to hand over the answer.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

const config = JSON.parse(process.argv[2]);
const userDataDir = mkdtempSync(join(tmpdir(), 'zapin-browser-'));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: config.chromium,
    headless: true,
    args: FLAGS,
    timeout: 30_000,
  });
  const pages = [];
  for (const page of config.pages) {
    pages.push(await visit(context, page));
  }
  process.stdout.write(`${JSON.stringify({ pages })}\n`);
} finally {
  await context?.close();
  rmSync(userDataDir, { recursive: true, force: true });
}

async function visit(context, { url, instance }) {
  const page = await context.newPage();
  // Preflights are made by the browser's network stack, outside the page: the DevTools
  // protocol is where they can be seen.
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  const preflights = [];
  cdp.on('Network.requestWillBeSent', (event) => {
    if (event.request.method === 'OPTIONS') {
      preflights.push(new URL(event.request.url).pathname);
    }
  });
  await page.goto(url);
  const calls = await page.evaluate(
    async ({ api, apikey, instance }) => {
      const call = async (method, path, { key, body } = {}) => {
        const headers = {};
        if (key) headers.apikey = key;
        if (body !== undefined) headers['Content-Type'] = 'application/json';
        try {
          const res = await fetch(api + path, {
            method,
            headers,
            body: body === undefined ? undefined : JSON.stringify(body),
          });
          return { status: res.status, body: await res.json() };
        } catch (error) {
          return { error: String(error) };
        }
      };
      // Evolution Manager's login: GET / (a simple request), then POST /verify-creds.
      return {
        origin: location.origin,
        welcome: await call('GET', '/'),
        verify: await call('POST', '/verify-creds', { key: apikey, body: {} }),
        create: await call('POST', '/instance/create', {
          key: apikey,
          body: { instanceName: instance, integration: 'WHATSAPP-BAILEYS' },
        }),
        list: await call('GET', '/instance/fetchInstances', { key: apikey }),
      };
    },
    { api: config.api, apikey: config.apikey, instance },
  );
  await page.close();
  return { ...calls, preflights };
}
