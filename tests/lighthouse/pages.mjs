import { ADMIN_TOKEN } from '../e2e/lib/broker.mjs';

// The pages Lighthouse measures, each in the looks that matter. Add a page here (the admin page
// of issue 16 goes here too); lighthouse.mjs runs every entry and holds each to the same bar.
//
// name:       the report's name, test-output/lighthouse/<name>.report.{html,json}
// path:       the page, on the broker that lighthouse.mjs started
// formFactor: 'mobile' (Lighthouse's default: a mid-range phone on a slow 4G link, simulated)
//             or 'desktop' (its desktop preset)
// lang:       the browser's language (the page picks its own from it)
// shows:      text the audited page must contain, so that a page in the wrong language or an
//             error page cannot pass for it
// broker:     extra broker settings this page needs (strings), merged over the defaults
// headers:    async (broker) => extra request headers, e.g. the admin page's session cookie
//             from POST /api/admin/login
//             (Lighthouse's report holds little of the page's text, mostly in the dom-size audit's
//             node labels: the console's entries name a text found there; the signed-in ones
//             one that only a rendered session row has: "Time left".)
// adminApi: the page needs the admin API (issue 16). On a binary that does not serve it yet
//             (GET /api/admin/state answers 404) the entry is skipped, or, with
//             ADMIN_API_DOUBLE=1, measured on the admin API's test double (tests/e2e/lib/admin-double.mjs).

// The operator's session cookie, and three visitors over plain HTTP so that the console's lists
// are not empty (two talk, one waits).
async function signedIn(broker) {
  for (let i = 0; i < 3; i++) {
    await fetch(`${broker.url}/api/session?action=join`, { method: 'POST', signal: AbortSignal.timeout(5000) });
  }
  const response = await fetch(`${broker.url}/api/admin/login`, {
    method: 'POST',
    headers: { Origin: broker.url, 'Content-Type': 'application/json' },
    body: JSON.stringify({ token: ADMIN_TOKEN }),
    signal: AbortSignal.timeout(5000),
  });
  if (response.status !== 200) throw new Error(`POST /api/admin/login answered ${response.status}`);
  return { Cookie: response.headers.get('set-cookie').split(';')[0] };
}

const ADMIN_BROKER = { MAX_CONCURRENT_USERS: '2', HEARTBEAT_TIMEOUT_SECONDS: '600', ADMISSION_GRACE_SECONDS: '600' };

export const PAGES = [
  { name: 'visitor-en-mobile', path: '/', formFactor: 'mobile', lang: 'en-US', shows: 'Talk with the AI assistant' },
  { name: 'visitor-en-desktop', path: '/', formFactor: 'desktop', lang: 'en-US', shows: 'Talk with the AI assistant' },
  { name: 'visitor-ru-mobile', path: '/', formFactor: 'mobile', lang: 'ru-RU', shows: 'Поговорите с ИИ‑ассистентом' },
  { name: 'admin-signed-out-en-mobile', path: '/admin/', formFactor: 'mobile', lang: 'en-US', shows: 'Live overview', adminApi: true },
  { name: 'admin-signed-out-ru-desktop', path: '/admin/', formFactor: 'desktop', lang: 'ru-RU', shows: 'Живая сводка', adminApi: true },
  { name: 'admin-signed-in-en-mobile', path: '/admin/', formFactor: 'mobile', lang: 'en-US', shows: 'Time left', adminApi: true, broker: ADMIN_BROKER, headers: signedIn },
  { name: 'admin-signed-in-en-desktop', path: '/admin/', formFactor: 'desktop', lang: 'en-US', shows: 'Time left', adminApi: true, broker: ADMIN_BROKER, headers: signedIn },
  { name: 'admin-signed-in-ru-mobile', path: '/admin/', formFactor: 'mobile', lang: 'ru-RU', shows: 'Осталось', adminApi: true, broker: ADMIN_BROKER, headers: signedIn },
];

export const CATEGORIES = ['performance', 'accessibility', 'best-practices', 'seo'];
