// The visitor's page: join the queue, wait with a live ETA, talk with the assistant, see why it ended.
import * as api from './js/api.js';
import { LiveChannel } from './js/live-channel.js';
import { startCall } from './js/realtime-call.js';
import { Countdown, formatClock } from './js/countdown.js';
import { Transcript } from './js/transcript.js';
import { AssistantActivity } from './js/activity.js';
import { askForNotifications, notificationPermission, signalTurn } from './js/attention.js';
import { startLevelMeter } from './js/level-meter.js';
import { createSound } from './js/sound.js';
import { has, initLanguage, language, localize, setLanguage, showVerbatim } from './js/i18n.js';

const $ = id => document.getElementById(id);
const VIEWS = ['idle', 'queued', 'call', 'ended', 'failed'];
const ENDED_REASONS = ['expired', 'forced', 'left', 'abandoned', 'shutdown', 'unknown', 'removed', 'budget_exhausted', 'idle', 'call_ended'];
const LOST_TICKET = ['unknown_ticket', 'missing_ticket'];
const NOT_RETRYABLE = ['insecure_context', 'no_webrtc'];
const MIC_ERRORS = {
  NotAllowedError: 'mic_denied', SecurityError: 'mic_denied', NotFoundError: 'mic_missing',
  OverconstrainedError: 'mic_missing', NotReadableError: 'mic_busy', AbortError: 'mic_busy',
};
const JOIN_ATTEMPTS = 8;
// Ends the call here if the server's "ended" has not come this long after the clock ran out.
const EXPIRY_GRACE_MS = 4000;

const transcript = new Transcript($('transcript'), $('transcript-scroll'));
const activity = new AssistantActivity(() => renderActivity());
const sessionClock = new Countdown(renderSessionClock);
const etaClock = new Countdown(seconds => {
  $('queue-eta').parentElement.classList.remove('stat--stale');
  if (seconds > 0) showVerbatim($('queue-eta'), formatClock(seconds));
  else localize($('queue-eta'), 'queue.etaSoon');
});

let session = null;  // one visit, from Start until it is over; callbacks of an older one are ignored
let shownView = 'idle';
let audioContext = null;
let sound = null;

const failure = code => Object.assign(new Error(code), { code });
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
const current = s => s === session && s.phase !== 'over';

// ---- what the visitor sees -------------------------------------------------------------------

// A new view takes the focus to its heading, so that a screen reader says what happened (left the
// queue, admitted, ended) and keyboard users start from there; the same view again does nothing.
function showView(name, stateKey = `state.${name}`) {
  for (const view of VIEWS) {
    const hidden = view !== name;
    if ($(`view-${view}`).hidden !== hidden) $(`view-${view}`).hidden = hidden;
  }
  setState(stateKey);
  renderTranscriptCard();
  if (name === shownView) return;
  shownView = name;
  $(`view-${name}`).querySelector('h1')?.focus();
}

// The transcript stays in view once there is something in it, also while queueing again.
function renderTranscriptCard() {
  const hasWords = !transcript.empty;
  const card = $('transcript-card');
  const show = shownViewIs('call') || hasWords;
  if (card.hidden === show) card.hidden = !show;
  $('transcript-actions').hidden = !hasWords;
  $('main').classList.toggle('stage--split', show);
}

const shownViewIs = name => !$(`view-${name}`).hidden;

// The pill's text, and data-state (idle, joining, queued, next, connecting, active, ended, failed) for tests.
function setState(stateKey) {
  const state = stateKey.replace('state.', '');
  if ($('state-label').dataset.state !== state) $('state-label').dataset.state = state;
  localize($('state-text'), stateKey);
}

function showNotice(key) {
  if (key) localize($('notice'), key);
  else showVerbatim($('notice'), '');
}

// Before Start: how long a conversation lasts, and whether the visitor would wait and why.
async function explainBeforeStart() {
  let stats;
  try {
    stats = await api.stats();
  } catch {
    return;  // the generic sentences already on the page stay
  }
  const seconds = Math.round((stats.sessionDurationMinutes ?? 0) * 60);
  if (seconds > 0) localize($('idle-length'), 'idle.length', { durationSeconds: seconds });
  const max = stats.maxConcurrentUsers ?? 0;
  const waiting = stats.queueLength ?? 0;
  if (!max) return;
  if ((stats.activeSessions ?? 0) < max && !waiting && !stats.paused) localize($('idle-load'), 'idle.free');
  else if (max === 1) localize($('idle-load'), 'idle.busyOne');
  else localize($('idle-load'), 'idle.busyMany', { count: max });
  if (waiting) localize($('idle-waiting'), 'idle.waiting', { count: waiting });
}

function renderQueue(s, doc) {
  const position = doc.position ?? 1;
  const next = position === 1;
  // The cost guard holds the queue (budget spent, or OpenAI out of credit): say why, and until when.
  const hold = doc.admissionPaused;
  showView('queued', next ? 'state.next' : 'state.queued');
  showVerbatim($('queue-position'), String(doc.position ?? '–'));
  $('queue-next').hidden = !next || Boolean(hold);  // "get ready to talk" would be wrong now
  // Why the wait: how many are ahead (not "N waiting", which counts those behind), and who holds
  // the places. What the server does not say is left out.
  if (next) showVerbatim($('queue-ahead'), '');  // the "You're next" box says it
  else localize($('queue-ahead'), 'queue.ahead', { count: position - 1 });
  const max = s.limits?.maxConcurrentUsers ?? 0;
  $('queue-busy').dataset.hold = hold?.reason ?? '';
  if (hold) localize($('queue-busy'), hold.reason === 'upstream_quota' ? 'queue.quotaPaused' : 'queue.budgetPaused', resetParams(hold));
  else if (doc.paused) localize($('queue-busy'), 'queue.paused');
  else if (max === 1) localize($('queue-busy'), 'queue.busyOne');
  else if (max > 1) localize($('queue-busy'), 'queue.busyMany', { count: max });
  else showVerbatim($('queue-busy'), '');
  if (s.limits?.sessionSeconds) localize($('queue-length'), 'queue.length', { durationSeconds: s.limits.sessionSeconds });
  renderNotifyOffer();
  if (s.link === 'unreachable') return;
  if (hold) {
    etaClock.stop();
    localize($('queue-eta'), 'queue.etaPaused');
    return;
  }
  etaClock.set(doc.etaSeconds ?? 0);
}

// When held admissions resume: the fields from which t() makes {time}, {date} and {zone}.
const resetParams = ({ resetsAt, resetsAtLocal, timeZone }) => ({ resetsAt, resetsAtLocal, timeZone });

// The wait is real only while the server answers: otherwise it stops and says so.
function stopWaitClock() {
  etaClock.stop();
  localize($('queue-eta'), 'queue.etaPaused');
  $('queue-eta').parentElement.classList.add('stat--stale');
}

function renderNotifyOffer() {
  const permission = notificationPermission();
  $('notify-button').hidden = permission !== 'default';
  if (permission === 'granted') localize($('notify-state'), 'queue.notifyOn');
  else if (permission === 'denied' && $('notify-state').dataset.asked) localize($('notify-state'), 'queue.notifyBlocked');
  else showVerbatim($('notify-state'), '');
}

function renderSessionClock(seconds) {
  const s = session;
  const total = s?.limits?.sessionSeconds || seconds || 1;
  $('countdown').textContent = formatClock(seconds);
  $('clock').style.setProperty('--progress', Math.min(1, seconds / total).toFixed(4));
  if (!s) return;
  const thresholds = warningThresholds(s);
  const passed = thresholds.filter(threshold => seconds <= threshold);
  $('clock').classList.toggle('clock--warning', passed.length > 0);
  $('clock').classList.toggle('clock--final', seconds <= Math.min(...thresholds));
  if (passed.length) warn(s, Math.min(...passed));
  if (seconds === 0 && current(s)) {
    s.expiryTimer ??= setTimeout(() => finish(s, 'expired'), EXPIRY_GRACE_MS);
  }
}

const warningThresholds = s => s.limits?.warningSeconds?.length ? s.limits.warningSeconds : [180, 120, 60];

// Each threshold is announced once, whether the push, its replay on a reconnected channel, a status
// (lastWarningSeconds) or the local clock reaches it first. `s.warned` lives as long as the page's
// session object: a channel reconnect keeps it, so a replay shows nothing new; a reload starts
// afresh and shows the latest warning that fired once (the banner went with the old page).
function warn(s, threshold) {
  if (!current(s) || s.warned.has(threshold)) return;
  // Thresholds already behind (the page was not listening then) are not announced late.
  for (const warning of warningThresholds(s)) if (warning >= threshold) s.warned.add(warning);
  s.warned.add(threshold);

  const banner = $('warning-banner');
  const title = document.createElement('strong');
  const hint = document.createElement('span');
  if (threshold >= 60) localize(title, 'warning.minutes', { count: Math.round(threshold / 60) });
  else localize(title, 'warning.seconds', { count: threshold });
  localize(hint, 'warning.hint');
  banner.replaceChildren(title, ' ', hint);
  banner.classList.toggle('warning--final', threshold <= Math.min(...warningThresholds(s)));
  sound?.warning();
}

// The error's own text when the table has one, else its family's (upstream_*).
function failureKey(error) {
  if (error.code === 'budget_exhausted') return error.details?.period === 'month' ? 'budget_exhausted_month' : 'budget_exhausted';
  if (has(`error.${error.code}.title`)) return error.code;
  return error.code.startsWith('upstream_') ? 'upstream' : error.code;
}

function renderFailure(error) {
  let code = failureKey(error);
  const resets = error.details?.resetsAt ? resetParams(error.details) : null;
  if (code.startsWith('budget_exhausted') && !resets) code = 'budget_exhausted_later';
  const known = has(`error.${code}.title`);
  localize($('error-title'), `error.${known ? code : 'generic'}.title`);
  if (known) localize($('error-text'), `error.${code}.text`, { seconds: error.retryAfter ?? 60, ...resets });
  else if (error.message && error.message !== error.code) showVerbatim($('error-text'), error.message);
  else localize($('error-text'), 'error.generic.text');
  $('error-box').dataset.code = error.code;
  $('retry-button').hidden = NOT_RETRYABLE.includes(error.code);
  showView('failed');
}

// `details`: the ended push (idle carries silenceSeconds).
function renderEnded(reason, details = {}) {
  const known = ENDED_REASONS.includes(reason) ? reason : 'other';
  localize($('ended-title'), `ended.${known}.title`);
  if (known === 'idle' && details.silenceSeconds > 0) localize($('ended-text'), 'ended.idle.text', { count: details.silenceSeconds });
  else if (known === 'idle') localize($('ended-text'), 'ended.idle.textQuiet');
  else localize($('ended-text'), `ended.${known}.text`);
  $('ended-title').dataset.reason = known;
  $('view-ended').dataset.reason = known;
  showView('ended');
}

// Before the call is up: the step it is at. During the call: what the assistant is doing.
function renderCallStatus(key) {
  const status = $('call-status');
  if (status.dataset.activity !== 'connecting') status.dataset.activity = 'connecting';
  localize($('call-status-text'), key);
  setState(session.phase === 'active' ? 'state.active' : 'state.connecting');
}

function renderActivity() {
  const s = session;
  if (!s || s.phase !== 'active') return;
  const shown = s.muted ? 'muted' : activity.current;
  const status = $('call-status');
  if (status.dataset.activity !== shown) status.dataset.activity = shown;
  localize($('call-status-text'), `activity.${shown}`);
}

// The button says what pressing it does, in both states; data-muted is for the looks and tests.
function setMuted(muted) {
  const s = session;
  if (s) s.muted = muted;
  for (const track of s?.microphone?.getAudioTracks() ?? []) track.enabled = !muted;
  $('mute-button').dataset.muted = String(muted);
  localize($('mute-label'), muted ? 'call.unmute' : 'call.mute');
  $('level-meter').classList.toggle('meter--muted', muted);
  renderActivity();
}

// ---- the visit ------------------------------------------------------------------------------

function unsupported() {
  if (!window.isSecureContext) return failure('insecure_context');
  if (!window.RTCPeerConnection || !navigator.mediaDevices?.getUserMedia) return failure('no_webrtc');
  return null;
}

async function start() {
  const problem = unsupported();
  if (problem) return renderFailure(problem);

  // Made inside the click, so the browser lets the page play sound later.
  audioContext ??= new AudioContext();
  audioContext.resume().catch(() => {});
  sound ??= createSound(audioContext);

  const s = session = { phase: 'joining', warned: new Set(), link: null };
  $('warning-banner').replaceChildren();
  $('warning-banner').classList.remove('warning--final');
  showFeedback(null);
  showView(shownView, 'state.joining');  // the view stays until the server answers
  for (const button of [$('start-button'), $('queue-again-button'), $('retry-button')]) {
    button.disabled = true;
  }
  localize($('start-button'), 'idle.starting');
  try {
    const doc = await joinWithRetry(s);
    if (!current(s)) return;
    api.setTicket(doc.ticket);
    s.channel = new LiveChannel(doc.ticket, { onMessage: message => receive(s, message), onLink: link => onLink(s, link) });
    s.channel.open();
    applyStatus(s, doc);
  } catch (error) {
    if (current(s)) abort(s, typeof error.code === 'string' ? error : failure('generic'));
  } finally {
    for (const button of [$('start-button'), $('queue-again-button'), $('retry-button')]) {
      button.disabled = false;
    }
    localize($('start-button'), 'idle.start');
  }
}

// A restarting server (no answer, or a proxy's 502/503) or one that cannot reach its shared store
// (503 store_unavailable) gets a few more tries with back-off.
async function joinWithRetry(s) {
  api.setTicket(null);
  for (let attempt = 1; ; attempt++) {
    try {
      const doc = await api.join();
      showNotice(null);
      return doc;
    } catch (error) {
      if (!error.unreachable || attempt >= JOIN_ATTEMPTS || !current(s)) throw error;
      showNotice(error.code === 'store_unavailable' ? 'notice.storeRetry' : 'notice.joinRetry');
      await sleep(retryDelay(attempt, error.retryAfter));
    }
  }
}

// Doubling waits (2 s, 4 s, ... 15 s), never sooner than the server's Retry-After, each stretched
// by up to half at random: pages turned away together do not all come back together.
function retryDelay(attempt, retryAfterSeconds) {
  const wait = Math.max((retryAfterSeconds ?? 0) * 1000, Math.min(15_000, 1000 * 2 ** attempt));
  return wait * (1 + Math.random() / 2);
}

function receive(s, message) {
  if (!current(s)) return;
  if (message.type === 'status') applyStatus(s, message);
  else if (message.type === 'warning') onWarning(s, message);
  else if (message.type === 'ended') finish(s, message.reason, message);
  else if (message.type === 'error' && LOST_TICKET.includes(message.error?.code)) finish(s, 'unknown');
}

// The push says which warning it is (warningSeconds) and the time left as it was sent. A warning
// is pushed at least once: told again ("replay") on a channel that opens after it fired, since its
// first push may have found the page reconnecting. warn() shows each once per session; a server
// without warningSeconds is matched to the nearest configured threshold.
function onWarning(s, { warningSeconds, remainingSeconds, minutesLeft }) {
  const seconds = remainingSeconds ?? minutesLeft * 60;
  sessionClock.set(seconds);
  const nearest = (a, b) => (Math.abs(b - seconds) < Math.abs(a - seconds) ? b : a);
  warn(s, warningSeconds ?? warningThresholds(s).reduce(nearest));
}

// 'live', 'reconnecting' or 'unreachable', each reported once when it changes.
function onLink(s, link) {
  if (!current(s)) return;
  s.link = link;
  const queued = s.phase === 'queued';
  if (link === 'live') showNotice(null);
  else if (link === 'reconnecting') showNotice('notice.reconnecting');
  else showNotice(queued ? 'notice.unreachableQueued' : 'notice.unreachable');
  if (queued && link === 'unreachable') stopWaitClock();
}

function applyStatus(s, doc) {
  s.limits = doc.limits ?? s.limits;
  if (doc.state === 'ended') return finish(s, doc.reason, doc);
  const waiting = s.phase === 'joining' || s.phase === 'queued';
  if (doc.state === 'queued' && waiting) {
    s.phase = 'queued';
    return renderQueue(s, doc);
  }
  if (doc.state !== 'active') return;
  etaClock.stop();
  sessionClock.set(doc.remainingSeconds ?? Math.round((Date.parse(doc.expiresAt) - Date.now()) / 1000));
  // The latest warning that fired (also in an HTTP poll while the socket is down): shown unless
  // this page already showed it, e.g. after a reload mid-call.
  if (doc.lastWarningSeconds) warn(s, doc.lastWarningSeconds);
  if (!doc.confirmed) s.channel.heartbeat();
  if (waiting) {
    if (s.phase === 'queued') {
      sound?.admitted();
      signalTurn();
    }
    beginCall(s);
  }
}

async function beginCall(s) {
  s.phase = 'connecting';
  transcript.beginConversation();
  activity.reset();
  setMuted(false);
  showView('call', 'state.connecting');
  renderCallStatus('call.askMic');
  try {
    s.microphone = await openMicrophone();
    if (!current(s)) return release(s);
    s.stopMeter = startLevelMeter(audioContext, s.microphone, $('level-meter'));
    renderCallStatus('call.connecting');
    s.call = await startCall(s.microphone, {
      onEvent: event => {
        transcript.handle(event);
        if (current(s)) activity.handle(event);
        renderTranscriptCard();
      },
      onRemoteStream: stream => { $('assistant-audio').srcObject = stream; },
      onFailed: () => current(s) && abort(s, failure('call_failed')),
    });
    if (!current(s)) return release(s);
    s.phase = 'active';
    setState('state.active');
    renderActivity();
  } catch (error) {
    // Errors of our own and of the API carry a code; a WebRTC exception means the call failed.
    if (current(s)) abort(s, typeof error.code === 'string' ? error : failure('call_failed'));
  }
}

async function openMicrophone() {
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
  } catch (error) {
    throw failure(MIC_ERRORS[error.name] ?? 'mic_missing');
  }
}

// Everything the visit holds on this side: the call, the microphone, timers and the channel.
function release(s) {
  s.call?.close();
  s.stopMeter?.();
  for (const track of s.microphone?.getTracks() ?? []) track.stop();
  s.call = s.stopMeter = s.microphone = null;
  s.channel?.close();
  clearTimeout(s.expiryTimer);
  if (s === session) {
    $('assistant-audio').srcObject = null;
    transcript.settle();
    sessionClock.stop();
    etaClock.stop();
    showNotice(null);
  }
}

function finish(s, reason, details) {
  if (!current(s)) return;
  const wasTalking = s.phase === 'active' || s.phase === 'connecting';
  s.phase = 'over';
  release(s);
  if (wasTalking && reason !== 'left') sound?.ended();
  renderEnded(reason, details);
}

// A failure on this side: give the slot or place back at once rather than let it time out.
function abort(s, error) {
  const held = s.channel !== undefined;
  s.phase = 'over';
  release(s);
  if (held && !LOST_TICKET.includes(error.code)) api.leave().catch(() => {});
  console.warn('voice-broker:', error.code, error.message);
  renderFailure(error);
}

function leave() {
  const s = session;
  if (!s || !current(s)) return;
  finish(s, 'left');
  api.leave().catch(error => console.warn('voice-broker: leave failed', error.code));
}

// ---- the transcript, taken away ---------------------------------------------------------------

function showFeedback(key, params) {
  if (key) localize($('transcript-feedback'), key, params);
  else showVerbatim($('transcript-feedback'), '');
}

async function copyTranscript() {
  try {
    await navigator.clipboard.writeText(transcript.toText());
    showFeedback('transcript.copied');
  } catch {
    showFeedback('transcript.copyFailed');
  }
}

function downloadTranscript() {
  const now = new Date();
  const pad = n => String(n).padStart(2, '0');
  const file = `transcript-${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}-${pad(now.getHours())}${pad(now.getMinutes())}.txt`;
  const url = URL.createObjectURL(new Blob([transcript.toText()], { type: 'text/plain;charset=utf-8' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = file;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  showFeedback('transcript.downloaded', { file });
}

// ---- wiring ---------------------------------------------------------------------------------

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
$('start-button').addEventListener('click', start);
$('queue-again-button').addEventListener('click', start);
$('retry-button').addEventListener('click', start);
$('leave-queue-button').addEventListener('click', leave);
$('end-button').addEventListener('click', leave);
$('mute-button').addEventListener('click', () => setMuted($('mute-button').dataset.muted !== 'true'));
$('notify-button').addEventListener('click', async () => {
  $('notify-state').dataset.asked = 'true';
  await askForNotifications();
  renderNotifyOffer();
  if ($('notify-button').hidden) $('leave-queue-button').focus();
});
$('transcript-copy').addEventListener('click', copyTranscript);
$('transcript-download').addEventListener('click', downloadTranscript);

const problem = unsupported();
if (problem) renderFailure(problem);
else explainBeforeStart();
