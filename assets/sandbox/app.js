// The sandbox chat page, the chat side: the chat list, the open conversation, typing as any person
// of the config, the phones' delivered/read receipts and the event stream. The side panel (scenarios,
// queue, timers, runs) is panel.js, loaded after this file; the two share `window.aofSandbox`.
// Plain ES2020, no dependencies. Every string that comes from the server or a person goes into the
// page as text (textContent), never as HTML.
'use strict';

(() => {
  // The page lives at {base}/sandbox/; every API path hangs off {base}.
  const cut = location.pathname.lastIndexOf('/sandbox');
  const BASE = cut >= 0 ? location.pathname.slice(0, cut) : '';
  const LEVEL = { sent: 1, delivered: 2, read: 3 };
  const REPLAY_IDLE_MS = 200; // quiet time after `open` that ends the history replay
  const GROUP_WINDOW_MS = 10000; // the copies of one group message are sent within this window

  const S = {
    setup: null,
    convs: new Map(), // key -> conversation: person "p:<digits>", group "g:<name>", "slack"
    selected: null, // the open conversation
    byWamid: new Map(), // bot message wamid -> message
    byInId: new Map(), // a person's message id -> message
    status: new Map(), // wamid -> highest status level the server reported
    reported: new Set(), // "wamid:status" this page reported
    replaying: false, // between `open` and the end of the history replay
    lastSeq: 0, // the number of the last event shown; the stream's numbers go on across restarts
  };

  // ---------- small helpers ----------

  const $ = (id) => document.getElementById(id);

  /** createElement with props (class, data, text, on<event>, attributes) and children. */
  function h(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (v == null) continue;
      if (k === 'class') node.className = v;
      else if (k === 'data') Object.assign(node.dataset, v);
      else if (k === 'text') node.textContent = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    node.append(...children.filter((c) => c != null));
    return node;
  }

  const digits = (phone) => String(phone || '').replace(/\D/g, '');
  const visible = () => document.visibilityState === 'visible';
  const narrow = () => window.matchMedia('(max-width: 759px)').matches;
  const clock = (at) => {
    const d = at ? new Date(at) : new Date();
    return isNaN(d) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  };

  function toast(text, kind = 'error') {
    const t = h('div', { class: `toast ${kind}`, role: 'status', text });
    $('toasts').append(t);
    setTimeout(() => t.remove(), kind === 'error' ? 7000 : 3500);
  }

  /** fetch with a JSON body and answer; `why` says what an HTTP error answered. */
  async function request(method, path, body, auth) {
    const headers = body === undefined ? {} : { 'Content-Type': 'application/json' };
    if (auth) headers.Authorization = 'Bearer ' + ((S.setup && S.setup.token) || '');
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const raw = await res.text();
    let json = null;
    try { json = raw ? JSON.parse(raw) : null; } catch (_) { /* not JSON */ }
    const why = json && json.error ? [json.error, json.field, json.reason].filter(Boolean).join(': ')
      : raw.slice(0, 200) || res.statusText;
    return { ok: res.ok, status: res.status, json, raw, why };
  }
  /** The same, throwing on an HTTP error. */
  async function call(...args) {
    const r = await request(...args);
    if (!r.ok) throw new Error(`${r.status} ${r.why}`);
    return r;
  }

  /** WhatsApp formatting (*bold*, _italic_, ~strike~, ```mono```), built as elements. */
  const FORMAT = /(^|[^\w*_~`])(```|[*_~])(?!\s)([^\n]*?\S)\2(?![\w*_~`])/;
  const TAGS = { '*': 'strong', _: 'em', '~': 's', '```': 'code' };
  function formatInto(parent, text) {
    let rest = String(text || '');
    while (rest) {
      const m = FORMAT.exec(rest);
      if (!m) { parent.append(rest); return; }
      parent.append(rest.slice(0, m.index + m[1].length));
      const inner = document.createElement(TAGS[m[2]]);
      if (m[2] === '```') inner.textContent = m[3];
      else formatInto(inner, m[3]);
      parent.append(inner);
      rest = rest.slice(m.index + m[0].length);
    }
  }

  // ---------- conversations and the chat list ----------

  function makeConv(key, kind, name, extra = {}) {
    let hue = 0;
    for (const ch of name) hue = (hue * 31 + ch.codePointAt(0)) % 360;
    const c = {
      key, kind, name, msgs: [], unreadLocal: 0, roles: [], members: [], ...extra,
      initials: kind === 'group' ? '👥' : kind === 'slack' ? '#' : name.replace(/^\+/, '').slice(0, 1).toUpperCase(),
      color: kind === 'slack' ? '#4a154b' : `hsl(${hue}, 45%, 45%)`,
      timeEl: h('span', { class: 'chat-time' }),
      previewEl: h('span', { class: 'preview' }),
      badgeEl: h('span', { class: 'badge', hidden: '' }),
    };
    const data = kind === 'person' ? { phone: c.phone } : kind === 'group' ? { group: name } : { channel: 'slack' };
    c.li = h('li', {
      class: kind === 'slack' ? 'chat channel' : `chat person ${kind}`, data, tabindex: '0', role: 'button',
      onclick: () => select(c),
      onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); select(c); } },
    },
    h('span', { class: 'avatar', style: `background:${c.color}`, 'aria-hidden': 'true', text: c.initials }),
    h('span', { class: 'chat-main' },
      h('span', { class: 'chat-top' }, h('span', { class: 'chat-name', text: name }), c.timeEl),
      h('span', { class: 'chat-bottom' }, c.previewEl, c.badgeEl)));
    S.convs.set(key, c);
    // People, then groups, then Slack: a number met later goes before the first group.
    const list = $('people');
    list.insertBefore(c.li, kind === 'person' ? list.querySelector('.group, .channel')
      : kind === 'group' ? list.querySelector('.channel') : null);
    updateItem(c);
    return c;
  }

  function personConv(phone, name) {
    const key = 'p:' + digits(phone);
    return S.convs.get(key) || makeConv(key, 'person', name || phone, { phone: '+' + digits(phone) });
  }
  const nameOf = (phone) => (S.convs.get('p:' + digits(phone)) || { name: phone }).name;

  const shown = (m) => !m.group || m.visible;
  // A person's unread messages follow the read receipts; groups and Slack count locally.
  const unread = (c) => (c.kind === 'person'
    ? c.msgs.filter((m) => m.dir === 'bot' && !m.readLocal && level(m) < LEVEL.read).length
    : c.unreadLocal);

  /** Refreshes a chat list entry: last message preview, its time, the unread badge. */
  function updateItem(c) {
    let last = null;
    for (let i = c.msgs.length - 1; i >= 0 && !last; i--) if (shown(c.msgs[i])) last = c.msgs[i];
    if (last) {
      const plain = document.createElement('span'); // the preview drops the formatting marks
      formatInto(plain, (last.text || '').split('\n').find((l) => l.trim()) || '');
      c.previewEl.textContent = (last.dir === 'me' ? 'You: ' : '') + plain.textContent;
    } else {
      c.previewEl.textContent = c.kind === 'group' ? `${c.members.length} members` : c.roles.join(' · ');
    }
    c.timeEl.textContent = last ? clock(last.at) : '';
    const n = unread(c);
    c.badgeEl.textContent = String(n);
    c.badgeEl.hidden = n === 0;
    c.li.classList.toggle('unread', n > 0);
  }

  function select(c) {
    S.selected = c;
    renderChat();
    $('app').classList.replace('view-people', 'view-chat');
    if (narrow()) ns.panel.showRuns(false);
    markRead(c);
    if (c.kind === 'person' && !narrow()) $('text').focus();
  }

  /** Shows the selected conversation in the middle column. */
  function renderChat() {
    const c = S.selected;
    for (const o of S.convs.values()) o.li.classList.toggle('selected', o === c);
    $('chat-name').textContent = c.name;
    $('chat-sub').textContent = c.kind === 'person' ? [c.phone, ...c.roles].join(' · ')
      : c.kind === 'group' ? c.members.map(nameOf).join(', ') : 'What the notifier posted to Slack';
    Object.assign($('chat-avatar'), { textContent: c.initials });
    $('chat-avatar').style.background = c.color;
    const box = $('messages');
    box.replaceChildren(...c.msgs.map(msgEl));
    if (!c.msgs.some(shown)) box.append(h('div', { class: 'empty', text: 'No messages yet.' }));
    box.scrollTop = box.scrollHeight;
    // The composer types as a person; groups and Slack are read-only.
    const canType = c.kind === 'person';
    $('composer-hint').hidden = canType;
    $('composer-hint').textContent = c.kind === 'group'
      ? 'The Cloud API has no groups: the bot writes to each member. Open a member’s chat to reply.'
      : 'Slack messages are shown for reference; nobody answers them from here.';
    $('text').disabled = $('send').disabled = !canType;
    $('text').placeholder = canType ? `Message the bot as ${c.name}` : 'Read-only';
    c.unreadLocal = 0;
    updateItem(c);
  }

  // ---------- messages ----------

  /** The status level of a bot message (a group bubble: its least advanced copy). */
  function level(m) {
    if (m.parts) return Math.min(...m.parts.map(level));
    return Math.max(LEVEL.sent, S.status.get(m.wamid) || 0);
  }

  /** A message's element, built once and then updated in place (tests may hold on to it). */
  function msgEl(m) {
    if (m.el) return m.el;
    const body = h('div', { class: 'body' });
    formatInto(body, m.text);
    const buttons = (m.buttons || []).map((b) => h('button', {
      class: 'reply-button', type: 'button', data: { id: b.id }, text: b.title,
      disabled: m.group ? '' : null, // in a group nobody in particular taps
      onclick: () => sendAs(m.conv, { button_id: b.id, button_title: b.title }, b.title, b.id),
    }));
    m.recipientsEl = m.parts ? h('span', { class: 'recipients' }) : null;
    m.ticksEl = m.dir === 'bot' && m.kind !== 'slack' ? h('span', { class: 'ticks' }) : null;
    m.stateEl = m.dir === 'me' ? h('span', { class: 'state' }) : null;
    m.el = h('div', { class: `msg ${m.dir === 'bot' ? 'from-bot' : 'from-me'} kind-${m.kind || 'text'}` },
      m.template ? h('div', { class: 'template-tag', title: (m.parameters || []).join(' | ') },
        'template ', h('span', { class: 'template-name', text: m.template })) : null,
      m.button_id ? h('div', { class: 'button-tag', text: '↩ button reply' }) : null,
      body,
      buttons.length ? h('div', { class: 'buttons' }, ...buttons) : null,
      h('div', { class: 'meta' }, m.recipientsEl, h('time', { text: clock(m.at) }), m.ticksEl, m.stateEl));
    refreshMsg(m);
    return m.el;
  }

  /** What changes after a message arrived: ticks, recipients, pending/failed marks, its id. */
  function refreshMsg(m) {
    if (!m.el) return;
    if (m.wamid || m.id) m.el.dataset.wamid = m.wamid || m.id;
    if (m.ticksEl) {
      const lvl = level(m);
      const status = lvl >= 3 ? 'read' : lvl === 2 ? 'delivered' : 'sent';
      Object.assign(m.ticksEl, { textContent: lvl >= 2 ? '✓✓' : '✓', title: status });
      m.ticksEl.dataset.status = status;
    }
    if (m.recipientsEl) m.recipientsEl.textContent = 'to ' + m.parts.map((p) => p.conv.name).join(', ');
    if (m.group) m.el.classList.toggle('solo', !m.visible);
    if (m.stateEl) {
      m.el.classList.toggle('pending', !!m.pending);
      m.el.classList.toggle('failed', !!m.failed);
      m.stateEl.textContent = m.failed ? '⚠ not sent' : m.pending ? '🕓' : '';
    }
  }

  /** Adds a message to a conversation, and to the screen when that conversation is open. */
  function addMsg(c, m) {
    m.conv = c;
    c.msgs.push(m);
    if (S.selected === c) {
      const box = $('messages');
      const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 120;
      if (shown(m)) box.querySelector('.empty')?.remove();
      box.append(msgEl(m));
      if (atBottom || m.dir === 'me') box.scrollTop = box.scrollHeight;
    } else if (c.kind !== 'person' && shown(m) && !S.replaying) {
      c.unreadLocal++;
    }
    updateItem(c);
  }

  function removeMsg(m) {
    m.conv.msgs = m.conv.msgs.filter((x) => x !== m);
    m.el?.remove();
    updateItem(m.conv);
  }

  /**
   * The bot writes to a group one member at a time; the server marks each copy with its group.
   * The copies (same text, close in time) make one bubble in the group's chat.
   */
  function addToGroup(g, m) {
    const t = Date.parse(m.at) || Date.now();
    const gm = g.msgs.slice(-30).reverse().find((x) => x.text === m.text && x.template === m.template
      && !x.parts.some((p) => p.conv === m.conv) && Math.abs((Date.parse(x.at) || t) - t) < GROUP_WINDOW_MS);
    if (!gm) {
      const copy = { ...m, group: true, parts: [m], visible: true, el: null, groupMsgs: null };
      m.groupMsgs.push(copy);
      addMsg(g, copy);
      return;
    }
    gm.parts.push(m);
    m.groupMsgs.push(gm);
    refreshMsg(gm);
    updateItem(g);
  }

  // ---------- playing the phones: delivered and read receipts ----------

  let reports = Promise.resolve(); // one report at a time, so "delivered" lands before "read"

  function report(m, status) {
    const key = m.wamid + ':' + status;
    if (S.reported.has(key) || level(m) >= LEVEL[status]) return;
    S.reported.add(key);
    reports = reports.then(() => call('POST', BASE + '/sandbox/status', { wamid: m.wamid, status })
      .catch((err) => toast(`Reporting ${status} for ${m.wamid} failed: ${err.message}`)));
  }

  /** What a person's phone does with a bot message: delivered, and read if the chat is open. */
  function playPhone(m) {
    if (m.dir !== 'bot' || m.conv.kind !== 'person') return;
    report(m, 'delivered');
    if (S.selected === m.conv && visible()) {
      report(m, 'read');
      m.readLocal = true;
    }
  }

  function markRead(c) {
    if (!c || c.kind !== 'person' || !visible() || S.replaying) return;
    c.msgs.forEach(playPhone);
    updateItem(c);
  }

  // ---------- typing as a person ----------

  /** Posts what the person typed (or tapped), shown at once and confirmed by its event. */
  async function sendAs(c, payload, text, buttonId) {
    if (c.kind !== 'person') return;
    const m = { dir: 'me', text, button_id: buttonId, at: new Date().toISOString(), pending: true };
    addMsg(c, m);
    try {
      const { json } = await call('POST', BASE + '/sandbox/inbound', { from: c.phone, name: c.name, ...payload });
      const id = json && json.id;
      if (!c.msgs.includes(m)) return; // the stream reconnected meanwhile: the replay has it
      if (id && S.byInId.has(id)) { removeMsg(m); return; } // its event came first
      Object.assign(m, { pending: false, id });
      if (id) S.byInId.set(id, m);
    } catch (err) {
      Object.assign(m, { pending: false, failed: true });
      toast(`Not sent: ${err.message}`);
    }
    refreshMsg(m);
  }

  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('text').value;
    if (!S.selected || S.selected.kind !== 'person' || !text.trim()) return;
    $('text').value = '';
    sendAs(S.selected, { text }, text);
  });

  // ---------- the event stream ----------

  const handlers = {
    outbound(e) {
      if (S.byWamid.has(e.wamid)) return;
      if (e.to === 'slack' || e.kind === 'slack') {
        const c = S.convs.get('slack') || makeConv('slack', 'slack', 'Slack');
        addMsg(c, { dir: 'bot', kind: 'slack', text: e.text, wamid: e.wamid, at: e.at });
        return;
      }
      const m = {
        dir: 'bot', kind: e.kind, template: e.template || null, parameters: e.parameters || [],
        text: e.text, buttons: e.buttons || [], wamid: e.wamid, at: e.at, groupMsgs: [],
      };
      S.byWamid.set(e.wamid, m);
      addMsg(personConv(e.to), m);
      const g = e.group && S.convs.get('g:' + e.group);
      if (g) addToGroup(g, m);
      if (!S.replaying) { playPhone(m); updateItem(m.conv); }
    },
    inbound(e) {
      const known = S.byInId.get(e.id);
      if (known) { known.pending = false; refreshMsg(known); return; }
      const m = { dir: 'me', kind: 'text', text: e.text, button_id: e.button_id, id: e.id, at: e.at };
      S.byInId.set(e.id, m);
      addMsg(personConv(e.from), m);
    },
    status(e) {
      S.status.set(e.wamid, Math.max(LEVEL[e.status] || 0, S.status.get(e.wamid) || 0));
      const m = S.byWamid.get(e.wamid);
      if (!m) return;
      [m, ...m.groupMsgs].forEach(refreshMsg);
      updateItem(m.conv);
    },
    /** The stream's first event: the number of the newest event the server has. Lower than what
     *  this page saw means the server lost its history (a new store): start over with it. */
    hello(e) {
      if (e.last_seq < S.lastSeq) { reset(); S.lastSeq = 0; }
    },
    // panel.js adds run_started, step and run_finished.
  };

  function handle(type, data) {
    let e;
    try { e = JSON.parse(data); } catch (_) { return; }
    // Events are numbered across restarts: a reconnect replays history, and what is shown stays.
    if (e.seq) {
      if (e.seq <= S.lastSeq) return;
      S.lastSeq = e.seq;
    }
    const fn = handlers[e.type || type];
    if (!fn) return;
    try { fn(e); } catch (err) { console.error('event', e, err); }
    if (S.replaying) armReplayEnd();
    ns.panel.refreshStateSoon();
  }

  /** Forgets what the stream told (the server's history is gone). */
  function reset() {
    S.convs.get('slack')?.li.remove();
    S.convs.delete('slack');
    for (const c of S.convs.values()) { c.msgs = []; c.unreadLocal = 0; updateItem(c); }
    for (const map of [S.byWamid, S.byInId, S.status, S.reported]) map.clear();
    ns.panel.reset();
    if (S.selected && S.convs.has(S.selected.key)) renderChat();
    else { S.selected = null; $('messages').replaceChildren(pickHint()); }
  }

  let replayTimer = null;
  /** The replay ends after a short quiet time; then the phones answer what the history left open. */
  function armReplayEnd() {
    clearTimeout(replayTimer);
    replayTimer = setTimeout(() => {
      S.replaying = false;
      for (const c of S.convs.values()) if (c.kind === 'person') { c.msgs.forEach(playPhone); updateItem(c); }
      document.body.dataset.ready = '1';
    }, REPLAY_IDLE_MS);
  }

  const pickHint = () => h('div', { class: 'empty', text: 'Pick a chat to type as that person.' });

  function setConn(state, text) {
    $('conn').dataset.state = state;
    $('conn').textContent = text;
  }

  function connect() {
    const es = new EventSource(BASE + '/sandbox/events');
    es.addEventListener('open', () => {
      S.replaying = true;
      setConn('live', 'live');
      armReplayEnd();
      ns.panel.refreshStateSoon();
    });
    es.addEventListener('error', () => {
      if (es.readyState !== EventSource.CLOSED) return setConn('down', 'reconnecting…');
      // The browser gave up (an HTTP error, a wrong content type): try again later ourselves.
      setConn('down', 'disconnected, retrying…');
      setTimeout(connect, 5000);
    });
    for (const type of Object.keys(handlers)) es.addEventListener(type, (ev) => handle(type, ev.data));
    es.onmessage = (ev) => handle('message', ev.data); // an unnamed event: its JSON has the type
  }

  // ---------- Back (a narrow screen shows one column at a time), coming back to the tab ----------

  $('back').addEventListener('click', () => $('app').classList.replace('view-chat', 'view-people'));
  document.addEventListener('visibilitychange', () => markRead(S.selected));

  // ---------- shared with panel.js ----------

  /**
   * The one namespace both scripts use. This file fills in the helpers and state; panel.js, loaded
   * next, adds its event handlers to `handlers` and its hooks as `panel`: showRuns(open),
   * refreshStateSoon(), reset() (the server's history is gone) and start(setup).
   */
  const ns = window.aofSandbox = {
    BASE, S, $, h, clock, narrow, toast, request, call, nameOf, handlers, panel: null,
  };

  // ---------- start ----------

  async function start() {
    try {
      S.setup = (await call('GET', BASE + '/sandbox/setup')).json;
    } catch (err) {
      setConn('down', 'no sandbox');
      $('messages').replaceChildren(h('div', { class: 'empty error', text: `Cannot load ${BASE}/sandbox/setup: ${err.message}. Retrying…` }));
      setTimeout(start, 5000);
      return;
    }
    const bot = S.setup.bot || 'bot';
    $('bot-name').textContent = bot;
    document.title = `${bot} sandbox`;
    for (const p of S.setup.people || []) {
      const c = personConv(p.phone, p.name);
      c.roles = p.roles || [];
      updateItem(c);
    }
    for (const g of S.setup.groups || []) makeConv('g:' + g.name, 'group', g.name, { members: g.members || [] });
    $('messages').replaceChildren(pickHint());
    ns.panel.start(S.setup);
    connect();
  }

  // After every script of the page ran, so panel.js has registered its hooks and handlers.
  document.addEventListener('DOMContentLoaded', start);
})();