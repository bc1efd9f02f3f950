// The dashboard's onboarding flow in a real browser: Debian's chromium driven by
// playwright-core (which never downloads a browser), against a live gateway wired to the
// simulator. The "phone" scans the QR code through the simulator's control API.
//
// Usage: node dashboard.mjs '<json>' with
//   {"chromium": "/usr/bin/chromium", "base": "http://127.0.0.1:G", "sim": "http://127.0.0.1:S",
//    "phone": "155…", "instance": "name", "shots": "/abs/dir",
//    "users": [{"email", "password"}, {"email", "password"}]}
// Prints one JSON line with what it saw (the Rust test asserts on it). Screenshots of each
// page at desktop and phone width go to `shots`.

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
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
const DESKTOP = { width: 1280, height: 860 };
const PHONE = { width: 390, height: 844 };

const config = JSON.parse(process.argv[2]);
mkdirSync(config.shots, { recursive: true });
const userDataDir = mkdtempSync(join(tmpdir(), 'zapin-dashboard-'));
const out = {};
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: config.chromium,
    headless: true,
    args: FLAGS,
    timeout: 30_000,
    viewport: DESKTOP,
    locale: 'en-US',
  });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  await run(page);
  process.stdout.write(`${JSON.stringify(out)}\n`);
} catch (error) {
  out.error = String(error?.stack || error);
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exitCode = 1;
} finally {
  await context?.close();
  rmSync(userDataDir, { recursive: true, force: true });
}

async function shoot(page, name) {
  for (const [label, size] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewportSize(size);
    await page.screenshot({ path: join(config.shots, `${name}-${label}.png`), fullPage: true });
  }
  await page.setViewportSize(DESKTOP);
}

async function signIn(page, { email, password }) {
  await page.goto(`${config.base}/dashboard/login`);
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/dashboard/login') && r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Sign in', exact: true }).click(),
  ]);
  await page.waitForLoadState();
  return response.status();
}

async function run(page) {
  const [ana, gil] = config.users;
  const name = config.instance;

  // A wrong password is refused, on the sign-in page.
  await page.goto(`${config.base}/dashboard/login`);
  await shoot(page, 'login');
  out.badPassword = {
    status: await signIn(page, { email: ana.email, password: 'not the password' }),
    alert: await page.getByRole('alert').textContent(),
    path: new URL(page.url()).pathname,
  };

  // Sign in, add an instance through the dialog.
  out.signIn = await signIn(page, ana);
  out.afterSignIn = new URL(page.url()).pathname;
  await page.getByRole('button', { name: 'Add Instance' }).click();
  const create = page.getByRole('dialog', { name: 'Create WhatsApp Instance' });
  await create.waitFor();
  const input = create.getByLabel('Instance Name');
  out.placeholder = await input.getAttribute('placeholder');
  await shoot(page, 'create-dialog');
  await input.fill(name);
  await create.getByRole('button', { name: 'Create Instance' }).click();
  const card = page.locator(`[data-instance="${name}"]`);
  await card.waitFor();
  out.badgeBefore = (await card.locator('[data-badge]').textContent()).trim();
  await shoot(page, 'instances');

  // From here on the page must not reload: a marker on window would vanish.
  await page.evaluate(() => { window.__noReload = 'still here'; });

  await card.getByRole('button', { name: 'Connect' }).click();
  const connect = page.getByRole('dialog', { name: `Connect ${name}` });
  await connect.waitFor();
  await connect.getByRole('button', { name: 'Generate QR Code' }).click();
  const svg = connect.locator('#qr-box svg');
  await svg.waitFor();
  out.qr = {
    width: await svg.getAttribute('width'),
    height: await svg.getAttribute('height'),
    label: await svg.getAttribute('aria-label'),
  };
  const seconds = async () => {
    const text = await page.locator('#qr-count').textContent();
    const m = /(\d+)/.exec(text || '');
    return m ? Number(m[1]) : null;
  };
  const first = await seconds();
  await page.waitForFunction(
    (n) => {
      const m = /(\d+)/.exec(document.getElementById('qr-count').textContent || '');
      return m && Number(m[1]) < n;
    },
    first,
    { timeout: 5_000 },
  );
  out.countdown = [first, await seconds()];
  out.badgeWhileQr = (await card.locator('[data-badge]').textContent()).trim();
  await shoot(page, 'connect-qr');

  // The engine rotates the code: the dialog shows the new one by itself.
  const firstCode = await page.locator('#qr-box').getAttribute('data-code');
  await page.waitForFunction(
    (c) => {
      const code = document.getElementById('qr-box').dataset.code;
      return code && code !== c;
    },
    firstCode,
    { timeout: 20_000 },
  );
  const code = await page.locator('#qr-box').getAttribute('data-code');
  out.rotated = code !== firstCode;
  out.countdownAfterRotation = await seconds();

  // The phone scans it; the badge turns "connected" without a reload.
  const scanned = Date.now();
  const scan = await fetch(`${config.sim}/sim/accounts/${config.phone}/scan`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ qr: code }),
  });
  out.scanStatus = scan.status;
  await page.waitForFunction(
    (n) => {
      const c = [...document.querySelectorAll('[data-instance]')].find((e) => e.dataset.instance === n);
      return c && c.querySelector('[data-badge]').textContent.trim() === 'connected';
    },
    name,
    { timeout: 5_000 },
  );
  out.connectedAfterMs = Date.now() - scanned;
  await connect.getByText('Connected', { exact: true }).waitFor();
  out.dialogConnected = await connect.locator('#connected').isVisible();
  out.toast = (await page.locator('#toasts').textContent()).trim();
  out.noReload = await page.evaluate(() => window.__noReload);
  await shoot(page, 'connected');
  await connect.getByRole('button', { name: 'Close' }).click();
  out.phoneShown = (await card.locator('[data-phone]').textContent()).trim();

  // Pairing by phone number: the second tab shows the 8-character code, the phone types it.
  await page.getByRole('button', { name: 'Add Instance' }).click();
  await create.getByLabel('Instance Name').fill(`${name}-code`);
  await create.getByRole('button', { name: 'Create Instance' }).click();
  const codeCard = page.locator(`[data-instance="${name}-code"]`);
  await codeCard.waitFor();
  await page.evaluate(() => { window.__noReload = 'still here'; });
  await codeCard.getByRole('button', { name: 'Connect' }).click();
  const codeDialog = page.getByRole('dialog', { name: `Connect ${name}-code` });
  await codeDialog.waitFor();
  await codeDialog.getByRole('tab', { name: 'Phone number' }).click();
  await codeDialog.getByLabel('Phone number with country code').fill(config.phone2);
  await codeDialog.getByRole('button', { name: 'Get pairing code' }).click();
  await page.waitForFunction(() => /^[A-Z0-9]{8}$/.test(document.getElementById('code-out').textContent.trim()), null, { timeout: 30_000 });
  const pairing = (await page.locator('#code-out').textContent()).trim();
  out.pairingCode = pairing;
  await shoot(page, 'connect-code');
  const typed = await fetch(`${config.sim}/sim/accounts/${config.phone2}/link-code`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ code: pairing }),
  });
  out.linkCodeStatus = typed.status;
  await page.waitForFunction(
    (n) => {
      const c = [...document.querySelectorAll('[data-instance]')].find((e) => e.dataset.instance === n);
      return c && c.querySelector('[data-badge]').textContent.trim() === 'connected';
    },
    `${name}-code`,
    { timeout: 15_000 },
  );
  out.codeDialogConnected = await codeDialog.locator('#connected').isVisible();
  out.codeNoReload = await page.evaluate(() => window.__noReload);
  await codeDialog.getByRole('button', { name: 'Close' }).click();

  // Log out asks first; then the badge goes back to "disconnected".
  await codeCard.getByRole('button', { name: 'Log out' }).click();
  const confirm = page.getByRole('dialog', { name: 'Please confirm' });
  await confirm.waitFor();
  out.confirmText = (await confirm.locator('#confirm-text').textContent()).trim();
  await confirm.getByRole('button', { name: 'Confirm' }).click();
  await page.waitForFunction(
    (n) => {
      const c = [...document.querySelectorAll('[data-instance]')].find((e) => e.dataset.instance === n);
      return c && c.querySelector('[data-badge]').textContent.trim() === 'disconnected';
    },
    `${name}-code`,
    { timeout: 10_000 },
  );
  out.loggedOut = true;

  // A form post without the CSRF token is refused (the session cookie alone is not enough).
  out.csrfless = await page.evaluate(async () => {
    const res = await fetch('/dashboard/instances', {
      method: 'POST',
      body: new URLSearchParams({ name: 'csrf-less' }),
    });
    return res.status;
  });

  // Sign out; the other tenant's user sees none of these instances.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL('**/dashboard/login');
  out.otherSignIn = await signIn(page, gil);
  out.otherCards = await page.locator('[data-instance]').count();
  out.otherSeesName = (await page.content()).includes(name);
  await shoot(page, 'other-tenant');
  await page.goto(`${config.base}/dashboard/keys`);
  await shoot(page, 'keys');

  // Back as the first tenant's user: the overview with the connected instance.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL('**/dashboard/login');
  await signIn(page, ana);
  await page.getByRole('link', { name: 'Overview' }).click();
  await page.waitForURL('**/dashboard/overview');
  out.overviewConnected = (await page.locator('.tile-value').first().textContent()).trim();
  await shoot(page, 'overview');
  await page.getByRole('link', { name: 'Instances' }).click();
  await page.getByRole('link', { name, exact: true }).click();
  await page.waitForURL(`**/dashboard/instances/${name}`);
  out.instanceBadge = (await page.locator('[data-badge]').textContent()).trim();
  await shoot(page, 'instance');

  // The other languages, chosen with the switcher and remembered; dark mode follows the system.
  await page.goto(`${config.base}/dashboard/instances`);
  out.languages = {};
  for (const [label, code] of [['Português', 'pt'], ['Bahasa Indonesia', 'id'], ['English', 'en']]) {
    await page.getByRole('link', { name: label }).click();
    await page.waitForLoadState();
    out.languages[code] = {
      lang: await page.locator('html').getAttribute('lang'),
      add: (await page.locator('[data-open=create]').textContent()).trim(),
      badge: (await page.locator(`[data-instance="${name}"] [data-badge]`).textContent()).trim(),
    };
    if (code !== 'en') await shoot(page, `instances-${code}`);
  }
  await page.emulateMedia({ colorScheme: 'dark' });
  out.darkBackground = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await shoot(page, 'instances-dark');
  await page.emulateMedia({ colorScheme: 'light' });

  // The operator signs in with the key and sees the tenants.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL('**/dashboard/login');
  await page.getByText('Operator sign-in').click();
  await page.getByLabel('Operator key').fill(config.operatorKey);
  await page.getByRole('button', { name: 'Sign in as operator' }).click();
  await page.waitForURL('**/dashboard/instances');
  out.operatorCards = await page.locator('[data-instance]').count();
  await page.getByRole('link', { name: 'Tenants' }).click();
  await page.waitForURL('**/dashboard/admin/tenants');
  out.tenantRows = await page.locator('table').first().locator('tbody tr').count();
  await shoot(page, 'tenants');
}
