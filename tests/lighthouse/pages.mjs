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
export const PAGES = [
  { name: 'visitor-en-mobile', path: '/', formFactor: 'mobile', lang: 'en-US', shows: 'Talk with the AI assistant' },
  { name: 'visitor-en-desktop', path: '/', formFactor: 'desktop', lang: 'en-US', shows: 'Talk with the AI assistant' },
  { name: 'visitor-ru-mobile', path: '/', formFactor: 'mobile', lang: 'ru-RU', shows: 'Поговорите с ИИ‑ассистентом' },
];

export const CATEGORIES = ['performance', 'accessibility', 'best-practices', 'seo'];
