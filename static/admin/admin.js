// The operator's console: sign in with the admin token (sent once, kept nowhere), then a live
// view of sessions, queue, today's use, OpenAI's health and the instances, and the operator's
// actions, each behind a confirmation. The server's state document (docs/API.md, "Admin API")
// comes over a WebSocket; times left and waits tick here between pushes.
import * as api from './js/admin-api.js';
import { AdminChannel } from './js/admin-channel.js';
import { confirmAction } from './js/confirm-dialog.js';
import { formatClock } from '../js/countdown.js';
import { formatDuration, initLanguage, language, localize, localizeLabel, onLanguageChange, setLanguage, showVerbatim, t } from './js/i18n.js';

const $ = id => document.getElementById(id);
const TICK_MS = 1000;
// The login lasts 15 minutes from its last request; while the operator works here, one cheap
// request a minute keeps it alive. An idle console signs itself out.
const RENEW_AFTER_MS = 60_000;
const BUDGET_WARN = 0.8;

let channel = null;
let doc = null;           // the last state document
let receivedAt = 0;       // performance.now() when it came
let lastRenew = 0;
let limitsEdited = false; // the operator is typing new limits: pushes leave the fields alone

// ---- formats, in the page's language --------------------------------------------------------

const money = value => new Intl.NumberFormat(language(), { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(value);
const number = (value, digits = 1) => new Intl.NumberFormat(language(), { maximumFractionDigits: digits }).format(value);
const percent = ratio => new Intl.NumberFormat(language(), { style: 'percent', maximumFractionDigits: 0 }).format(ratio);
const clockTime = iso => new Intl.DateTimeFormat(language(), { hour: 'numeric', minute: '2-digit', second: '2-digit' }).format(new Date(iso));
const dateTime = iso => new Intl.DateTimeFormat(language(), { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso));
const elapsed = () => Math.floor((performance.now() - receivedAt) / 1000);

function ago(iso) {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (seconds < 60) return t('ago.seconds', { count: seconds });
  if (seconds < 3600) return t('ago.minutes', { count: Math.floor(seconds / 60) });
  return t('ago.hours', { count: Math.floor(seconds / 3600) });
}

function setText(element, text) {
  if (element.textContent !== text) showVerbatim(element, text);
}

// ---- signing in -----------------------------------------------------------------------------

function showSignin(messageKey, params, { disabled = false } = {}) {
  document.body.dataset.ready = '';
  channel?.close();
  channel = null;
  doc = null;
  $('view-console').hidden = true;
  $('signout-button').hidden = true;
  $('view-signin').hidden = false;
  if (messageKey) localize($('signin-message'), messageKey, params);
  else showVerbatim($('signin-message'), '');
  $('token-input').disabled = disabled;
  $('signin-button').disabled = disabled;
  if (!disabled) $('token-input').focus();
  else $('signin-title').focus();
}

function showConsole(first) {
  document.body.dataset.ready = '';
  $('view-signin').hidden = true;
  $('view-console').hidden = false;
  $('signout-button').hidden = false;
  showVerbatim($('signin-message'), '');
  showVerbatim($('announcer'), '');
  lastRenew = performance.now();
  if (first) render(first);
  $('console-title').focus();
  channel = new AdminChannel({
    onState: render,
    onLink: renderLink,
    onSignedOut: () => showSignin('signin.expired'),
  });
  renderLink('connecting');
  channel.open();
}

async function signIn(event) {
  event.preventDefault();
  const input = $('token-input');
  // The token leaves the field at once: nothing on the page holds it after this line.
  const token = input.value.trim();
  input.value = '';
  if (!token) {
    localize($('signin-message'), 'signin.empty');
    input.focus();
    return;
  }
  $('signin-button').disabled = true;
  localize($('signin-button'), 'signin.busy');
  try {
    await api.login(token);
    showConsole(await api.state());
  } catch (error) {
    showSignin(...signinProblem(error));
  } finally {
    $('signin-button').disabled = $('token-input').disabled;
    localize($('signin-button'), 'signin.submit');
  }
}

// What the sign-in form says for a failed request: [key, params, options].
function signinProblem(error) {
  if (error.code === 'unauthorized') return ['signin.wrong'];
  if (error.code === 'too_many_attempts') return ['signin.throttled', { count: error.retryAfter ?? 60 }];
  if (error.code === 'admin_disabled') return ['signin.disabled', undefined, { disabled: true }];
  if (error.code === 'bad_origin') return ['signin.badOrigin'];
  if (error.code === 'unreachable') return ['signin.unreachable'];
  if (error.status === 404) return ['signin.unavailable', undefined, { disabled: true }];
  return ['signin.failed', { message: error.message }];
}

async function signOut() {
  try {
    await api.logout();
  } catch {
    // Signed out already, or the server is away: the page forgets the console either way.
  }
  showSignin('signin.signedOut');
}

// While the operator uses the console, the login is renewed at most once a minute.
function renewOnActivity() {
  if (!doc || performance.now() - lastRenew < RENEW_AFTER_MS) return;
  lastRenew = performance.now();
  api.state().then(render, error => {
    if (error.status === 401) showSignin('signin.expired');
  });
}

// ---- the live view --------------------------------------------------------------------------

function renderLink(link) {
  const pill = $('link-state');
  if (pill.dataset.link !== link) pill.dataset.link = link;
  localize($('link-text'), `link.${link}`);
}

function render(state) {
  if ($('view-console').hidden) return;
  doc = state;
  receivedAt = performance.now();
  renderOverview();
  renderSessions();
  renderQueue();
  renderToday();
  renderUpstream();
  renderInstances();
}

function renderOverview() {
  const { limits, sessions, queue, paused } = doc;
  $('paused-banner').hidden = !paused;
  $('pause-button').hidden = paused;
  $('resume-button').hidden = !paused;
  $('end-all-button').disabled = sessions.length === 0;
  setText($('figure-active'), t('figure.activeValue', { active: sessions.length, max: limits.maxConcurrentUsers }));
  setText($('figure-queue'), t('figure.queueValue', { count: queue.length, max: limits.maxQueueLength }));
  setText($('figure-length'), formatDuration(Math.round(limits.sessionDurationMinutes * 60)));
  const store = doc.storeKind !== 'redis' ? 'store.memory' : doc.storeHealthy ? 'store.redis' : 'store.down';
  localize($('figure-store'), store);
  $('figure-store').classList.toggle('is-bad', store === 'store.down');
  if (!limitsEdited) {
    setValue($('limits-users'), String(limits.maxConcurrentUsers));
    setValue($('limits-minutes'), String(Math.round(limits.sessionDurationMinutes * 100) / 100));
  }
}

function setValue(input, value) {
  if (input.value !== value) input.value = value;
}

// Rows are kept by id and updated in place, so a push never takes a button from under the
// operator's focus; when the focused row goes away, the focus goes to the list's heading.
function reconcile(list, items, make, update, heading) {
  const rows = new Map([...list.children].map(row => [row.dataset.id, row]));
  items.forEach((item, index) => {
    let row = rows.get(item.id);
    rows.delete(item.id);
    if (!row) row = make(item);
    update(row, item);
    if (list.children[index] !== row) list.insertBefore(row, list.children[index] ?? null);
  });
  for (const row of rows.values()) {
    const hadFocus = row.contains(document.activeElement);
    row.remove();
    if (hadFocus) heading.focus();
  }
}

// A row: a title, facts as a description list (label and value), and one action button.
function makeRow(id, testid, fields, action) {
  const row = document.createElement('li');
  row.className = 'row';
  row.dataset.id = id;
  row.dataset.testid = testid;
  const title = document.createElement('h3');
  title.className = 'row__title';
  row.append(title);
  const facts = document.createElement('dl');
  facts.className = 'row__facts';
  for (const [field, labelKey] of fields) {
    const pair = document.createElement('div');
    const label = document.createElement('dt');
    localize(label, labelKey);
    const value = document.createElement('dd');
    value.dataset.field = field;
    pair.append(label, value);
    facts.append(pair);
  }
  row.append(facts);
  if (action) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'btn btn--small btn--outline-danger row__action';
    button.dataset.testid = action.testid;
    localize(button, action.label);
    localizeLabel(button, action.aria, { id });
    button.addEventListener('click', () => action.run(id));
    row.append(button);
  }
  return row;
}

const field = (row, name) => row.querySelector(`[data-field="${name}"]`);

const SESSION_FIELDS = [
  ['left', 'session.left'], ['started', 'session.started'], ['call', 'session.call'], ['mode', 'session.mode'],
  ['address', 'session.address'], ['instance', 'session.instance'], ['cost', 'session.cost'],
];

function renderSessions() {
  const sessions = doc.sessions;
  setText($('sessions-count'), `(${sessions.length})`);
  $('sessions-empty').hidden = sessions.length > 0;
  reconcile($('sessions-list'), sessions,
    s => makeRow(s.id, 'session-row', SESSION_FIELDS, { testid: 'end-session', label: 'action.end', aria: 'action.endLabel', run: endSession }),
    (row, s) => {
      localize(row.querySelector('.row__title'), 'session.name', { id: s.id });
      setText(field(row, 'started'), clockTime(s.startedAt));
      localize(field(row, 'mode'), `mode.${s.mode === 'relay' ? 'relay' : 'token'}`);
      localize(field(row, 'call'), s.callConnected ? 'call.yes' : 'call.no');
      field(row, 'call').dataset.state = s.callConnected ? 'yes' : 'no';
      setText(field(row, 'address'), s.clientAddress);
      setText(field(row, 'instance'), s.instance);
      if (s.costUsd === null || s.costUsd === undefined) localize(field(row, 'cost'), 'cost.unknown');
      else setText(field(row, 'cost'), money(s.costUsd));
    }, $('sessions-title'));
  tick();
}

const QUEUE_FIELDS = [['waiting', 'entry.waiting'], ['connected', 'entry.connected'], ['id', 'entry.id'], ['address', 'entry.address']];

function renderQueue() {
  const queue = doc.queue;
  setText($('queue-count'), `(${queue.length})`);
  $('queue-empty').hidden = queue.length > 0;
  reconcile($('queue-list'), queue,
    e => makeRow(e.id, 'queue-row', QUEUE_FIELDS, { testid: 'remove-entry', label: 'action.remove', aria: 'action.removeLabel', run: removeEntry }),
    (row, e) => {
      localize(row.querySelector('.row__title'), 'entry.name', { position: e.position });
      setText(field(row, 'id'), e.id);
      localize(field(row, 'connected'), e.connected ? 'connected.yes' : 'connected.no');
      field(row, 'connected').dataset.state = e.connected ? 'yes' : 'no';
      setText(field(row, 'address'), e.clientAddress);
    }, $('queue-title'));
  tick();
}

// Between pushes the clocks run here: time left goes down, waits go up.
function tick() {
  if (!doc) return;
  const passed = elapsed();
  for (const s of doc.sessions) {
    const row = $('sessions-list').querySelector(`[data-id="${CSS.escape(s.id)}"]`);
    if (row) setText(field(row, 'left'), formatClock(Math.max(0, s.remainingSeconds - passed)));
  }
  for (const e of doc.queue) {
    const row = $('queue-list').querySelector(`[data-id="${CSS.escape(e.id)}"]`);
    if (row) setText(field(row, 'waiting'), formatClock(e.waitingSeconds + passed));
  }
}

function renderToday() {
  const today = doc.today;
  setText($('today-sessions'), `${today.sessionsStarted} / ${today.sessionsCompleted}`);
  setText($('today-minutes'), number(today.minutesUsed));
  const estimated = money(today.estimatedCostUsd ?? 0);
  if (today.realCostUsd === null || today.realCostUsd === undefined) localize($('today-cost'), 'today.costValue', { estimated });
  else localize($('today-cost'), 'today.costBoth', { real: money(today.realCostUsd), estimated });

  const budget = today.budget;
  $('budget').hidden = !budget;
  $('budget-none').hidden = Boolean(budget);
  if (!budget) return;
  renderBar('day', budget.spentUsd, budget.dailyUsd);
  renderBar('month', budget.monthSpentUsd, budget.monthlyUsd);
  const time = dateTime(budget.resetsAt);
  localize($('budget-state'), budget.exhausted ? 'budget.exhausted' : 'budget.ok', { time });
  $('budget-state').classList.toggle('is-bad', budget.exhausted);
}

function renderBar(period, spent, total) {
  const text = $(`budget-${period}-text`);
  const bar = $(`budget-${period}-bar`);
  const usable = typeof total === 'number' && total > 0;
  bar.hidden = !usable;
  text.parentElement.hidden = !usable;
  if (!usable) return;
  const ratio = spent / total;
  setText(text, t('budget.of', { spent: money(spent), budget: money(total), percent: percent(ratio) }));
  bar.style.setProperty('--fill', Math.min(1, ratio).toFixed(4));
  bar.dataset.level = ratio >= 1 ? 'over' : ratio >= BUDGET_WARN ? 'warn' : 'ok';
}

function renderUpstream() {
  const upstream = doc.upstream ?? {};
  const health = $('upstream-health');
  let level = 'ok';
  if (upstream.quotaPausedUntil) {
    level = 'bad';
    localize($('upstream-health-text'), 'upstream.quota', { time: dateTime(upstream.quotaPausedUntil) });
  } else if (upstream.lastError) {
    level = 'warn';
    localize($('upstream-health-text'), 'upstream.errored');
  } else {
    localize($('upstream-health-text'), 'upstream.ok');
  }
  if (health.dataset.health !== level) health.dataset.health = level;
  const last = upstream.lastError;
  if (last) setText($('upstream-error'), t('upstream.errorValue', { status: last.status, code: last.code, ago: ago(last.at) }));
  else localize($('upstream-error'), 'upstream.none');
  const latency = upstream.latencyMs;
  if (latency) setText($('upstream-latency'), t('upstream.latencyValue', { p50: number(latency.p50, 0), p90: number(latency.p90, 0) }));
  else localize($('upstream-latency'), 'upstream.noSamples');
}

const INSTANCE_FIELDS = [['health', 'instance.health'], ['seen', 'instance.seen'], ['sessions', 'instance.sessions'], ['connections', 'instance.connections']];

function renderInstances() {
  const redis = doc.storeKind === 'redis';
  $('instances-card').hidden = !redis;
  if (!redis) return;
  reconcile($('instances-list'), doc.instances ?? [],
    i => makeRow(i.id, 'instance-row', INSTANCE_FIELDS, null),
    (row, i) => {
      const title = row.querySelector('.row__title');
      if (i.id === doc.instance) localize(title, 'instance.this', { id: i.id });
      else setText(title, i.id);
      localize(field(row, 'health'), i.healthy ? 'instance.healthy' : 'instance.down');
      field(row, 'health').dataset.state = i.healthy ? 'yes' : 'bad';
      setText(field(row, 'seen'), t('ago.seconds', { count: i.lastSeenSeconds }));
      setText(field(row, 'sessions'), String(i.activeSessions));
      setText(field(row, 'connections'), String(i.connections));
    }, $('instances-title'));
}

// ---- actions ----------------------------------------------------------------------------------

function announce(key, params) {
  localize($('announcer'), key, params);
}

// Asks, then does, then says what happened. The push that follows updates the lists.
// Resolves {answer} when done, {error} when refused, null when the operator said no.
async function act(question, run, doneKey, doneParams) {
  if (!await confirmAction(question)) return null;
  try {
    const answer = await run();
    lastRenew = performance.now();
    announce(doneKey, typeof doneParams === 'function' ? doneParams(answer) : doneParams);
    return { answer };
  } catch (error) {
    if (error.status === 401) showSignin('signin.expired');
    else if (error.code === 'unknown_session' || error.code === 'unknown_entry') announce('done.gone');
    else announce('done.failed', { message: error.message });
    return { error };
  }
}

function endSession(id) {
  const session = doc?.sessions.find(s => s.id === id);
  act({ title: t('confirm.endTitle', { id }), text: t('confirm.endText', { address: session?.clientAddress ?? '?' }), ok: t('confirm.endOk') },
    () => api.endSession(id), 'done.ended', { id });
}

function removeEntry(id) {
  const entry = doc?.queue.find(e => e.id === id);
  act({ title: t('confirm.removeTitle', { id }), text: t('confirm.removeText', { address: entry?.clientAddress ?? '?', position: entry?.position ?? '?' }), ok: t('confirm.removeOk') },
    () => api.removeEntry(id), 'done.removed', { id });
}

function endAll() {
  const count = doc?.sessions.length ?? 0;
  act({ title: t('confirm.endAllTitle'), text: t('confirm.endAllText', { count }), ok: t('confirm.endAllOk') },
    api.endAll, 'done.endedAll', answer => ({ count: answer.endedSessions }));
}

function pause() {
  act({ title: t('confirm.pauseTitle'), text: t('confirm.pauseText'), ok: t('confirm.pauseOk') }, api.pause, 'done.paused')
    .then(done => done?.answer && $('resume-button').focus());
}

function resume() {
  act({ title: t('confirm.resumeTitle'), text: t('confirm.resumeText'), ok: t('confirm.resumeOk') }, api.resume, 'done.resumed')
    .then(done => done?.answer && $('pause-button').focus());
}

// The fields are checked here first (the server checks again, and names the field it refuses).
async function applyLimits(event) {
  event.preventDefault();
  const users = Number($('limits-users').value);
  const minutes = Number($('limits-minutes').value);
  const problem = !Number.isInteger(users) || users < 1 || users > 10000 ? ['limits-users', 'limits.badUsers']
    : !(minutes > 0 && minutes <= 1440) ? ['limits-minutes', 'limits.badMinutes'] : null;
  for (const id of ['limits-users', 'limits-minutes']) $(id).removeAttribute('aria-invalid');
  if (problem) return limitsProblem(...problem);
  showVerbatim($('limits-error'), '');
  const current = doc?.limits;
  if (current && current.maxConcurrentUsers === users && Math.abs(current.sessionDurationMinutes - minutes) < 1e-9) {
    limitsEdited = false;
    announce('limits.unchanged');
    return;
  }
  const done = await act({
    title: t('confirm.limitsTitle'),
    text: t('confirm.limitsText', { users: t('confirm.people', { count: users }), durationSeconds: Math.round(minutes * 60) }),
    ok: t('confirm.limitsOk'),
  }, () => api.setLimits({ maxConcurrentUsers: users, sessionDurationMinutes: minutes }), 'done.limits');
  if (done?.answer) {
    limitsEdited = false;
    if (doc) render({ ...doc, limits: done.answer.limits });
  } else if (done?.error?.code === 'bad_limits') {
    // The server names the field it refused: shown next to that field.
    const which = /sessionDuration/.test(done.error.message) ? 'limits-minutes' : 'limits-users';
    $(which).setAttribute('aria-invalid', 'true');
    $(which).setAttribute('aria-describedby', 'limits-error');
    showVerbatim($('limits-error'), done.error.message);
  }
}

function limitsProblem(inputId, key) {
  $(inputId).setAttribute('aria-invalid', 'true');
  $(inputId).setAttribute('aria-describedby', 'limits-error');
  localize($('limits-error'), key);
  $(inputId).focus();
}

// ---- wiring -----------------------------------------------------------------------------------

function renderLanguageSwitch() {
  for (const button of document.querySelectorAll('[data-lang]')) {
    button.setAttribute('aria-pressed', String(button.dataset.lang === language()));
  }
}

initLanguage();
renderLanguageSwitch();
for (const button of document.querySelectorAll('[data-lang]')) {
  button.addEventListener('click', () => {
    setLanguage(button.dataset.lang);
    renderLanguageSwitch();
  });
}
// Numbers, money and times are in the language's format: redo them.
onLanguageChange(() => { if (doc) render(doc); });

$('signin-form').addEventListener('submit', signIn);
$('signout-button').addEventListener('click', signOut);
$('pause-button').addEventListener('click', pause);
$('resume-button').addEventListener('click', resume);
$('end-all-button').addEventListener('click', endAll);
$('limits-form').addEventListener('submit', applyLimits);
for (const id of ['limits-users', 'limits-minutes']) $(id).addEventListener('input', () => { limitsEdited = true; });
for (const type of ['pointerdown', 'keydown']) document.addEventListener(type, renewOnActivity, { passive: true });
setInterval(tick, TICK_MS);

// Already signed in? The cookie is HttpOnly: only the server can tell.
async function start() {
  try {
    const login = await api.whoami();
    if (!login.signedIn) return showSignin();
    showConsole(await api.state());
  } catch (error) {
    if (error.status === 401) showSignin('signin.expired');
    else showSignin(...signinProblem(error));
  }
}
start();
