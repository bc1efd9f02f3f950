// zapin dashboard: dialogs, confirmations, the QR countdown and live updates (Server-Sent
// Events). Every text comes from the page (data-msgs, rendered from the message catalogue).
'use strict';
(() => {
  const msgs = JSON.parse(document.body.dataset.msgs || '{}');
  const csrf = document.querySelector('meta[name=csrf]')?.content || '';
  const $ = (id) => document.getElementById(id);
  const msg = (k, n) => (msgs[k] || '').replace('{n}', String(n));

  function toast(text, isError) {
    const box = $('toasts');
    if (!box || !text) return;
    const el = document.createElement('div');
    el.className = isError ? 'toast err' : 'toast';
    el.textContent = text;
    box.append(el);
    setTimeout(() => el.remove(), 6000);
  }

  // Dialog openers and closers.
  document.addEventListener('click', (e) => {
    const opener = e.target.closest('[data-open]');
    if (opener) $(opener.dataset.open)?.showModal();
    const closer = e.target.closest('[data-close]');
    if (closer) closer.closest('dialog')?.close();
    const copy = e.target.closest('[data-copy]');
    if (copy) {
      navigator.clipboard?.writeText($(copy.dataset.copy)?.textContent || '')
        .then(() => toast(msgs['keys.copied']));
    }
  });

  // Forms that ask first (restart, log out, delete, revoke, suspend).
  const confirmDialog = $('confirm');
  let pending = null;
  document.addEventListener('submit', (e) => {
    const form = e.target;
    if (!form.dataset.confirm || form.dataset.confirmed || !confirmDialog) return;
    e.preventDefault();
    pending = form;
    $('confirm-text').textContent = form.dataset.confirm;
    confirmDialog.showModal();
    $('confirm-yes').focus();
  });
  $('confirm-yes')?.addEventListener('click', () => {
    confirmDialog.close();
    if (pending) {
      pending.dataset.confirmed = '1';
      pending.requestSubmit();
    }
  });

  // Cards and their badges.
  const cardOf = (name) =>
    [...document.querySelectorAll('[data-instance]')].find((c) => c.dataset.instance === name);
  function setState(name, status, phone, profile) {
    const card = cardOf(name);
    if (!card) return;
    const badge = card.querySelector('[data-badge]');
    const cls = { open: 's-open', connecting: 's-connecting' }[status] || 's-close';
    badge.className = 'badge ' + cls;
    badge.textContent = msgs['status.' + ({ open: 'open', connecting: 'connecting' }[status] || 'close')];
    if (phone) card.querySelector('[data-phone]').textContent = phone;
    if (profile) card.querySelector('[data-profile]').textContent = profile;
  }

  // The connect dialog.
  const dialog = $('connect');
  let current = null; // {name, path}
  let timer = null;
  let left = 0;
  function tick() {
    const count = $('qr-count');
    count.textContent = left > 0 ? msg('instances.expires_in', left) : msgs['instances.qr_expired'];
    if (left > 0) left -= 1;
  }
  function showQr(qr) {
    const box = $('qr-box');
    box.innerHTML = qr.svg || '';
    box.dataset.code = qr.code || '';
    $('qr-help').hidden = false;
    left = Math.max(0, qr.expiresIn | 0);
    clearInterval(timer);
    tick();
    timer = setInterval(tick, 1000);
  }
  function resetDialog() {
    clearInterval(timer);
    $('qr-box').innerHTML = '';
    $('qr-box').dataset.code = '';
    $('qr-count').textContent = '';
    $('qr-help').hidden = true;
    $('code-out').textContent = '';
    $('code-label').hidden = true;
    $('code-help').hidden = true;
    $('connected').hidden = true;
    $('gen-qr').hidden = false;
  }
  function connected() {
    clearInterval(timer);
    $('qr-box').innerHTML = '';
    $('qr-count').textContent = '';
    $('qr-help').hidden = true;
    $('gen-qr').hidden = true;
    $('connected').hidden = false;
    toast(msgs['instances.toast_connected']);
  }
  async function post(path, body) {
    const res = await fetch(path, {
      method: 'POST',
      headers: { 'X-CSRF-Token': csrf, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(body || {}),
      credentials: 'same-origin',
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data.error || msgs['err.generic']);
    return data;
  }
  document.addEventListener('click', (e) => {
    const btn = e.target.closest('[data-connect]');
    if (!btn || !dialog) return;
    current = { name: btn.dataset.connect, path: btn.dataset.path };
    $('connect-title').textContent = btn.dataset.title;
    resetDialog();
    selectTab('tab-qr');
    dialog.showModal();
  });
  dialog?.addEventListener('close', () => { clearInterval(timer); current = null; });
  $('gen-qr')?.addEventListener('click', async () => {
    if (!current) return;
    const name = current.name;
    $('qr-count').textContent = msgs['instances.qr_waiting'];
    try {
      const data = await post(current.path + '/connect');
      if (!current || current.name !== name) return;
      if (data.status === 'open') return connected();
      // A rotation may already have arrived over the event stream: keep the newer code.
      if (data.qr && !$('qr-box').dataset.code) showQr(data.qr);
    } catch (err) {
      toast(err.message, true);
    }
  });
  $('code-form')?.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!current) return;
    try {
      const data = await post(current.path + '/connect', { number: $('code-number').value });
      if (data.status === 'open') return connected();
      if (data.pairingCode) showCode(data.pairingCode);
    } catch (err) {
      toast(err.message, true);
    }
  });
  function showCode(code) {
    $('code-out').textContent = code;
    $('code-label').hidden = false;
    $('code-help').hidden = false;
  }

  // Tabs: click and arrow keys.
  function selectTab(id) {
    for (const tab of document.querySelectorAll('[role=tab]')) {
      const on = tab.id === id;
      tab.setAttribute('aria-selected', String(on));
      tab.tabIndex = on ? 0 : -1;
      $(tab.getAttribute('aria-controls')).hidden = !on;
    }
  }
  document.querySelector('[role=tablist]')?.addEventListener('click', (e) => {
    const tab = e.target.closest('[role=tab]');
    if (tab) selectTab(tab.id);
  });
  document.querySelector('[role=tablist]')?.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
    const tabs = [...document.querySelectorAll('[role=tab]')];
    const i = tabs.indexOf(document.activeElement);
    const next = tabs[(i + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
    selectTab(next.id);
    next.focus();
  });

  // Live updates.
  if (!document.getElementById('cards')) return;
  const events = new EventSource('/dashboard/events');
  const data = (e) => { try { return JSON.parse(e.data); } catch { return {}; } };
  const mine = (d) => current && d.name === current.name && dialog.open;
  events.addEventListener('state', (e) => {
    const d = data(e);
    setState(d.name, d.status, d.phone, d.profile);
    if (mine(d) && d.status === 'open') connected();
  });
  events.addEventListener('qr', (e) => {
    const d = data(e);
    setState(d.name, 'connecting');
    if (mine(d) && $('panel-qr').hidden === false && !$('gen-qr').hidden) showQr(d);
  });
  events.addEventListener('pairing', (e) => {
    const d = data(e);
    if (mine(d)) showCode(d.code);
  });
  events.addEventListener('qrlimit', (e) => {
    const d = data(e);
    setState(d.name, 'close');
    if (mine(d)) {
      clearInterval(timer);
      $('qr-box').innerHTML = '';
      $('qr-box').dataset.code = '';
      $('qr-count').textContent = msgs['instances.qr_limit'];
    }
  });
  events.addEventListener('reload', () => location.reload());
  events.addEventListener('open', () => document.body.removeAttribute('data-live-lost'));
  events.onerror = () => {
    if (!document.body.hasAttribute('data-live-lost')) {
      document.body.setAttribute('data-live-lost', '');
      toast(msgs['live.lost'], true);
    }
  };
})();
