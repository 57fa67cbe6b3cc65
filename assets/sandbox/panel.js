// The sandbox chat page, the side panel: the tutorial's scenarios, the send queue and sessions, the
// pending timers (with Fire now) and the flow runs with their steps, plus the Runs toggle of the
// layout. Loaded after app.js, whose helpers and state it takes from `window.aofSandbox`; it adds
// the run events to the stream's handlers and gives app.js its hooks as `aofSandbox.panel`.
// Plain ES2020, no dependencies; server strings go into the page as text, never as HTML.
'use strict';

(() => {
  const ns = window.aofSandbox;
  const { BASE, S, $, h, clock, narrow, toast, request, call, nameOf, handlers } = ns;
  const MAX_RUNS = 100;
  const pretty = (v) => (v === undefined ? '' : JSON.stringify(v, null, 2));
  const runs = new Map(); // run_id -> run, oldest first
  const timers = new Map(); // timer id -> {data, el, countEl}

  // ---------- runs ----------

  /** The run events of the stream (app.js dispatches them). */
  Object.assign(handlers, {
    run_started(e) {
      const r = runFor(e.run_id, e.flow);
      r.whoEl.textContent = e.from ? 'by ' + nameOf(e.from) : 'by a webhook or timer';
      r.timeEl.textContent = clock(e.at);
    },
    step(e) {
      const r = runFor(e.run_id, e.flow);
      r.stepsEl.append(stepEl(r, e));
    },
    run_finished(e) { // may come alone, for a missing flow
      const r = runFor(e.run_id, e.flow);
      r.el.dataset.outcome = e.outcome;
      r.outcomeEl.textContent = String(e.outcome).replace('_', ' ');
      r.msEl.textContent = `${e.ms} ms`;
      if (!r.timeEl.textContent) r.timeEl.textContent = clock(e.at);
    },
  });

  function runFor(id, flow) {
    let r = runs.get(id);
    if (r) return r;
    r = {
      flow,
      outcomeEl: h('span', { class: 'outcome', text: 'running…' }),
      whoEl: h('span', { class: 'who' }),
      timeEl: h('span', { class: 'time' }),
      msEl: h('span', { class: 'ms' }),
      stepsEl: h('ol', { class: 'steps' }),
    };
    r.el = h('div', { class: 'run', data: { run: id, flow, outcome: 'running' } },
      h('div', { class: 'run-head' }, h('span', { class: 'flow', text: flow }), r.outcomeEl),
      h('div', { class: 'run-sub' }, r.whoEl, r.timeEl, r.msEl),
      r.stepsEl);
    runs.set(id, r);
    $('runs').prepend(r.el);
    for (const [old, o] of runs) {
      if (runs.size <= MAX_RUNS) break;
      o.el.remove();
      runs.delete(old);
    }
    return r;
  }

  const STEP_ICON = { ok: '✓', empty: '∅', skipped: '↷', answered: '💬', error: '✗' };

  /** A step row; a click on it (outside the JSON, which stays selectable) shows its input and output. */
  function stepEl(r, e) {
    const io = h('div', { class: 'io', hidden: '' },
      h('div', { class: 'io-label', text: 'input' }), h('pre', { text: pretty(e.input) }),
      h('div', { class: 'io-label', text: 'output' }), h('pre', { text: pretty(e.output) }));
    r.stepFlow = r.stepFlow || e.flow; // the run's first step is its own flow's (as `simulate` shows)
    const name = e.flow && e.flow !== r.stepFlow ? `${e.flow} › ${e.step}` : e.step; // a sub-flow's step
    return h('li', {
      class: 'step', data: { step: e.step, outcome: e.outcome },
      onclick: (ev) => { if (!io.contains(ev.target)) io.hidden = !io.hidden; },
    },
      h('button', { class: 'step-head', type: 'button', title: 'Input and output' },
        h('span', { class: 'icon', text: STEP_ICON[e.outcome] || '•' }),
        h('span', { class: 'name', text: name }),
        h('span', { class: 'ms', text: `${e.ms} ms` })),
      e.error ? h('div', { class: e.outcome === 'answered' ? 'step-answer' : 'step-error', text: e.error }) : null,
      io);
  }

  // ---------- covers and silences (COVER, SILENCE from the chat) ----------

  /** The covers and silences in force, as lines; "none" when there are neither. */
  function showOncall(covers, silences) {
    const until = (ms) => new Date(ms).toISOString().slice(11, 16) + ' UTC';
    const lines = [
      ...covers.map((c) => `🔁 ${c.name} has the pager until ${until(c.until_ms)}`),
      ...silences.map((s) => `🔕 ${s.service} silenced until ${until(s.until_ms)} (${s.held.length} held)`),
    ];
    const list = $('oncall');
    list.replaceChildren(...lines.map((text) => {
      const li = document.createElement('li');
      li.textContent = text;
      return li;
    }));
    list.classList.toggle('none', lines.length === 0);
  }

  // ---------- queue, sessions, timers ----------

  let stateTimer = null;
  /** At most one /sandbox/state request per 250 ms while events flow. */
  function refreshStateSoon() {
    if (!stateTimer) stateTimer = setTimeout(() => { stateTimer = null; refreshState(); }, 250);
  }

  async function refreshState() {
    if (!S.setup) return;
    try {
      const { json } = await call('GET', BASE + '/sandbox/state');
      const q = json.queue || {};
      $('queue').textContent = `Queue: ${q.queued ?? 0} waiting, ${q.in_flight ?? 0} sending`;
      $('sessions').textContent = `Sessions: ${json.sessions ?? 0}`;
      showTimers(json.timers || []);
      showOncall(json.covers || [], json.silences || []);
    } catch (err) {
      $('queue').textContent = `Queue: unavailable (${err.message})`;
    }
  }

  /** Updates the timer list by id, so that a Fire button stays the same element. */
  function showTimers(list) {
    const ids = new Set(list.map((t) => t.id));
    for (const [id, t] of timers) if (!ids.has(id)) { t.el.remove(); timers.delete(id); }
    for (const data of list) {
      let t = timers.get(data.id);
      if (!t) {
        const input = data.input && typeof data.input === 'object' ? data.input : {};
        const about = input.alert_id || input.request_id || input.service || '';
        t = { countEl: h('span', { class: 'countdown' }) };
        t.el = h('li', { class: 'timer', data: { id: data.id, flow: data.flow } },
          h('div', { class: 'timer-main' },
            h('span', { class: 'flow', text: data.flow }),
            h('span', { class: 'about', text: String(about), title: pretty(data.input) })),
          t.countEl,
          h('button', { class: 'fire', type: 'button', text: 'Fire now ⏩', onclick: (ev) => fire(t, ev.currentTarget) }));
        timers.set(data.id, t);
      }
      t.data = data;
      $('timers').append(t.el); // soonest first, as the server lists them
    }
    $('timers').classList.toggle('none', timers.size === 0);
    tick();
  }

  /** The countdowns tick locally from fire_at_ms: no request. */
  function tick() {
    for (const t of timers.values()) {
      const s = Math.max(0, Math.round((t.data.fire_at_ms - Date.now()) / 1000));
      t.countEl.textContent = s > 0 ? `in ${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}` : 'due';
    }
  }

  async function fire(t, button) {
    button.disabled = true;
    try {
      const { json } = await call('POST', BASE + '/admin/timers/fire', { id: t.data.id }, true);
      toast(`${t.data.flow}: fired ${json ? json.fired : '?'}`, 'info');
    } catch (err) {
      toast(`Fire failed: ${err.message}`);
      button.disabled = false;
    }
    refreshState();
  }

  // ---------- scenarios ----------

  function showScenarios(list) {
    const box = $('scenarios');
    box.replaceChildren();
    if (!list.length) box.append(h('p', { class: 'muted', text: 'None: the config has none of the tutorial’s flows.' }));
    for (const s of list) {
      const area = h('textarea', { class: 'scenario-body', spellcheck: 'false', rows: '8', hidden: '', 'aria-label': `${s.label} body` });
      area.value = pretty(s.body);
      const edit = h('button', {
        class: 'edit', type: 'button', text: 'edit', title: 'Edit the JSON body before firing',
        onclick: () => { area.hidden = !area.hidden; edit.classList.toggle('on', !area.hidden); },
      });
      box.append(h('div', { class: 'scenario-item' },
        h('div', { class: 'scenario-row' },
          h('button', { class: 'scenario', type: 'button', data: { id: s.id }, text: s.label, title: s.description || null,
            onclick: () => runScenario(s, area) }),
          edit),
        s.description ? h('div', { class: 'desc', text: s.description }) : null,
        area));
    }
  }

  /** Fires a scenario through the real endpoint, with the webhook token; shows what it answered. */
  async function runScenario(s, area) {
    const out = $('scenario-result');
    const show = (cls, text) => { out.className = cls; out.textContent = `${s.label}: ${text}`; };
    let body;
    try { body = JSON.parse(area.value); } catch (err) { return show('error', `the body is not JSON (${err.message})`); }
    const path = /^(https?:)?\//.test(s.path) ? s.path : `${BASE}/${s.path}`;
    show('busy', `${s.method || 'POST'} ${path}…`);
    try {
      const r = await request(s.method || 'POST', path, body, true);
      const j = r.json;
      const ids = j && (j.run_id ? [j.run_id] : Array.isArray(j.runs) ? j.runs : []);
      const summary = ids && ids.length ? `${ids.join(', ')}${j.flow ? ' · ' + j.flow : ''}` : j ? JSON.stringify(j) : r.raw;
      show(r.ok ? 'ok' : 'error', `${r.status} ${summary.slice(0, 300)}`);
    } catch (err) {
      show('error', err.message);
    }
  }

  // ---------- layout: a narrow screen shows one column at a time ----------

  /** Wide: the Runs column shows unless closed. Narrow: it covers the others when open. */
  function showRuns(open) {
    $('app').classList.toggle(narrow() ? 'runs-open' : 'runs-closed', narrow() ? open : !open);
    $('toggle-runs').setAttribute('aria-pressed', String(open));
  }
  $('toggle-runs').addEventListener('click', () => {
    const app = $('app');
    showRuns(narrow() ? !app.classList.contains('runs-open') : app.classList.contains('runs-closed'));
  });

  // ---------- the hooks app.js calls ----------

  ns.panel = {
    showRuns,
    refreshStateSoon,
    /** The server's history is gone: forget the runs it told. */
    reset() {
      runs.clear();
      $('runs').replaceChildren();
    },
    /** The setup arrived: the scenarios, and a first look at the queue and timers. */
    start(setup) {
      showScenarios(setup.scenarios || []);
      refreshState();
    },
  };

  setInterval(tick, 1000); // the countdowns
  setInterval(refreshState, 10000); // a slow refresh, for changes no event announces
})();
