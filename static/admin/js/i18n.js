// Every visible string of the operator's console, in English and Russian, and the helpers that put
// them on screen: the same pattern and the same remembered language as the visitor page's
// static/js/i18n.js (one choice for both pages), with the console's own table.

const STRINGS = {
  en: {
    'page.title': 'Operator console · Voice assistant',
    'page.description': 'The operator’s live view of the voice assistant: who is talking, who is waiting, today’s use and cost, and the controls to end, pause and change limits.',
    'brand': 'Operator console',
    'skip': 'Skip to content',
    'lang.label': 'Language',
    'signout': 'Sign out',
    'footer': 'Addresses are shown masked. Every action here is written to the server’s log.',

    'signin.title': 'Operator console',
    'signin.lead': 'Sign in with the server’s admin token (ADMIN_TOKEN).',
    'signin.label': 'Admin token',
    'signin.hint': 'The token is sent once and never kept in this browser; the sign-in lasts 15 minutes without activity.',
    'signin.submit': 'Sign in',
    'signin.busy': 'Signing in…',
    'signin.empty': 'Enter the admin token.',
    'signin.wrong': 'That token is not right. Check ADMIN_TOKEN in the server’s .env.local.',
    'signin.throttled': { one: 'Too many wrong tokens from this address. Try again in {count} second.', other: 'Too many wrong tokens from this address. Try again in {count} seconds.' },
    'signin.disabled': 'The console is off on this server: set ADMIN_TOKEN in .env.local and restart it.',
    'signin.badOrigin': 'The server refused this page’s origin. Open the console at the server’s own address.',
    'signin.unavailable': 'This server does not offer the console’s API yet (it needs a newer voice-broker).',
    'signin.unreachable': 'The server can’t be reached. Check the connection and try again.',
    'signin.failed': 'Signing in failed: {message}',
    'signin.signedOut': 'You are signed out.',
    'signin.expired': 'You were signed out: the sign-in ended (15 minutes without activity, or signed out elsewhere).',

    'console.title': 'Live overview',
    'link.connecting': 'Connecting…',
    'link.live': 'Live',
    'link.polling': 'Reconnecting — updating every few seconds',
    'link.offline': 'The server can’t be reached — retrying',
    'paused.title': 'Admissions are paused.',
    'paused.text': 'Nobody new is admitted; the queue is kept and visitors see “paused by the operator”.',
    'figure.active': 'Talking',
    'figure.queue': 'Waiting',
    'figure.length': 'Session length',
    'figure.store': 'Store',
    'figure.activeValue': '{active} of {max}',
    'figure.queueValue': '{count} of {max}',
    'store.memory': 'memory',
    'store.redis': 'Redis',
    'store.down': 'Redis — not answering',

    'action.pause': 'Pause admissions',
    'action.resume': 'Resume admissions',
    'action.endAll': 'End all sessions',
    'action.end': 'End',
    'action.endLabel': 'End session {id}',
    'action.remove': 'Remove',
    'action.removeLabel': 'Remove visitor {id} from the queue',

    'limits.title': 'Limits',
    'limits.users': 'People talking at once',
    'limits.minutes': 'Minutes per conversation',
    'limits.apply': 'Apply',
    'limits.hint': 'New values apply to new admissions; nobody is cut off.',
    'limits.badUsers': 'People talking at once: a whole number from 1 to 10000.',
    'limits.badMinutes': 'Minutes per conversation: a number above 0, at most 1440.',
    'limits.unchanged': 'These are the limits in force already.',

    'confirm.cancel': 'Cancel',
    'confirm.endTitle': 'End session {id}?',
    'confirm.endText': 'The visitor ({address}) sees “ended by the operator” and the call is hung up. The next in the queue is admitted.',
    'confirm.endOk': 'End session',
    'confirm.endAllTitle': 'End all sessions?',
    'confirm.endAllText': { one: 'The {count} active visitor sees “ended by the operator” and the call is hung up.', other: 'All {count} active visitors see “ended by the operator” and their calls are hung up.' },
    'confirm.endAllOk': 'End all',
    'confirm.removeTitle': 'Remove visitor {id} from the queue?',
    'confirm.removeText': 'The visitor ({address}, place {position}) loses the place and is told so. Everyone behind moves up.',
    'confirm.removeOk': 'Remove',
    'confirm.pauseTitle': 'Pause admissions?',
    'confirm.pauseText': 'Running conversations go on, but nobody new is admitted until you resume. Waiting visitors keep their place and see “paused by the operator”.',
    'confirm.pauseOk': 'Pause',
    'confirm.resumeTitle': 'Resume admissions?',
    'confirm.resumeText': 'Free places are filled from the queue at once, in order.',
    'confirm.resumeOk': 'Resume',
    'confirm.limitsTitle': 'Change the limits?',
    'confirm.limitsText': '{users} at once, up to {duration} per conversation. Applies to new admissions; nobody is cut off.',
    'confirm.limitsOk': 'Apply',
    'confirm.people': { one: '{count} person', other: '{count} people' },

    'done.ended': 'Session {id} ended.',
    'done.endedAll': { one: '{count} session ended.', other: '{count} sessions ended.' },
    'done.removed': 'Visitor {id} removed from the queue.',
    'done.paused': 'Admissions paused.',
    'done.resumed': 'Admissions resumed.',
    'done.limits': 'Limits changed.',
    'done.gone': 'Nothing to do: it was already over.',
    'done.failed': 'That did not work: {message}',

    'sessions.title': 'Active sessions',
    'sessions.empty': 'Nobody is talking now.',
    'session.name': 'Session {id}',
    'session.started': 'Started',
    'session.left': 'Time left',
    'session.mode': 'Mode',
    'session.call': 'Call',
    'session.address': 'Address',
    'session.instance': 'Instance',
    'session.cost': 'Cost so far',
    'mode.token': 'token',
    'mode.relay': 'relay',
    'call.yes': 'connected',
    'call.no': 'not yet',
    'cost.unknown': 'not known yet',

    'queue.title': 'Queue',
    'queue.empty': 'Nobody is waiting.',
    'entry.name': 'Place {position}',
    'entry.id': 'Visitor',
    'entry.waiting': 'Waiting',
    'entry.connected': 'Page',
    'entry.address': 'Address',
    'connected.yes': 'open',
    'connected.no': 'closed',

    'today.title': 'Today',
    'today.sessions': 'Sessions started / completed',
    'today.minutes': 'Minutes talked',
    'today.cost': 'Cost',
    'today.costValue': '{estimated} estimated',
    'today.costBoth': '{real} billed ({estimated} estimated)',
    'budget.day': 'Daily budget',
    'budget.month': 'Monthly budget',
    'budget.of': '{spent} of {budget} ({percent})',
    'budget.ok': 'Resets {time}.',
    'budget.exhausted': 'Budget used up: nobody new is admitted until {time}.',
    'budget.none': 'No budget is set on this server.',

    'upstream.title': 'OpenAI',
    'upstream.ok': 'No errors since the server started',
    'upstream.errored': 'Errors seen — see the last one',
    'upstream.quota': 'Quota reached: admissions wait until {time}',
    'upstream.lastError': 'Last error',
    'upstream.latency': 'Latency p50 / p90',
    'upstream.errorValue': '{status} {code}, {ago}',
    'upstream.latencyValue': '{p50} ms / {p90} ms',
    'upstream.none': 'none',
    'upstream.noSamples': 'no calls yet',

    'instances.title': 'Instances',
    'instance.health': 'State',
    'instance.healthy': 'healthy',
    'instance.down': 'not answering',
    'instance.seen': 'Last seen',
    'instance.sessions': 'Sessions',
    'instance.connections': 'Connections',
    'instance.this': '{id} (this one)',

    'ago.seconds': { one: '{count} second ago', other: '{count} seconds ago' },
    'ago.minutes': { one: '{count} minute ago', other: '{count} minutes ago' },
    'ago.hours': { one: '{count} hour ago', other: '{count} hours ago' },
    'duration.minutes': { one: '{count} minute', other: '{count} minutes' },
    'duration.seconds': { one: '{count} second', other: '{count} seconds' },
  },
  ru: {
    'page.title': 'Пульт оператора · Голосовой ассистент',
    'page.description': 'Живая сводка голосового ассистента для оператора: кто говорит, кто ждёт, расход за сегодня и управление: завершить, приостановить, изменить лимиты.',
    'brand': 'Пульт оператора',
    'skip': 'Перейти к содержанию',
    'lang.label': 'Язык',
    'signout': 'Выйти',
    'footer': 'Адреса показаны частично. Каждое действие здесь записывается в журнал сервера.',

    'signin.title': 'Пульт оператора',
    'signin.lead': 'Войдите с административным токеном сервера (ADMIN_TOKEN).',
    'signin.label': 'Административный токен',
    'signin.hint': 'Токен отправляется один раз и не сохраняется в браузере; вход действует 15 минут без активности.',
    'signin.submit': 'Войти',
    'signin.busy': 'Вход…',
    'signin.empty': 'Введите административный токен.',
    'signin.wrong': 'Токен неверный. Проверьте ADMIN_TOKEN в .env.local на сервере.',
    'signin.throttled': { one: 'Слишком много неверных попыток с этого адреса. Повторите через {count} секунду.', few: 'Слишком много неверных попыток с этого адреса. Повторите через {count} секунды.', many: 'Слишком много неверных попыток с этого адреса. Повторите через {count} секунд.', other: 'Слишком много неверных попыток с этого адреса. Повторите через {count} секунды.' },
    'signin.disabled': 'Пульт на этом сервере выключен: задайте ADMIN_TOKEN в .env.local и перезапустите сервер.',
    'signin.badOrigin': 'Сервер отклонил адрес этой страницы. Откройте пульт по собственному адресу сервера.',
    'signin.unavailable': 'Этот сервер пока не предоставляет API пульта (нужна более новая версия voice-broker).',
    'signin.unreachable': 'Сервер недоступен. Проверьте соединение и попробуйте снова.',
    'signin.failed': 'Войти не удалось: {message}',
    'signin.signedOut': 'Вы вышли.',
    'signin.expired': 'Вход завершён: 15 минут без активности или выход в другом окне.',

    'console.title': 'Живая сводка',
    'link.connecting': 'Подключение…',
    'link.live': 'В реальном времени',
    'link.polling': 'Переподключение — обновляется каждые несколько секунд',
    'link.offline': 'Сервер недоступен — повторяем',
    'paused.title': 'Приём приостановлен.',
    'paused.text': 'Новых собеседников не впускают; очередь сохраняется, посетители видят «приостановлено оператором».',
    'figure.active': 'Говорят',
    'figure.queue': 'Ждут',
    'figure.length': 'Длина разговора',
    'figure.store': 'Хранилище',
    'figure.activeValue': '{active} из {max}',
    'figure.queueValue': '{count} из {max}',
    'store.memory': 'память',
    'store.redis': 'Redis',
    'store.down': 'Redis — не отвечает',

    'action.pause': 'Приостановить приём',
    'action.resume': 'Возобновить приём',
    'action.endAll': 'Завершить все',
    'action.end': 'Завершить',
    'action.endLabel': 'Завершить сессию {id}',
    'action.remove': 'Убрать',
    'action.removeLabel': 'Убрать посетителя {id} из очереди',

    'limits.title': 'Лимиты',
    'limits.users': 'Одновременно говорят',
    'limits.minutes': 'Минут на разговор',
    'limits.apply': 'Применить',
    'limits.hint': 'Новые значения действуют для новых допусков; никого не прерывают.',
    'limits.badUsers': 'Одновременно говорят: целое число от 1 до 10000.',
    'limits.badMinutes': 'Минут на разговор: число больше 0, не больше 1440.',
    'limits.unchanged': 'Эти лимиты уже действуют.',

    'confirm.cancel': 'Отмена',
    'confirm.endTitle': 'Завершить сессию {id}?',
    'confirm.endText': 'Посетитель ({address}) увидит «завершено оператором», звонок будет прерван. Следующий в очереди будет допущен.',
    'confirm.endOk': 'Завершить сессию',
    'confirm.endAllTitle': 'Завершить все сессии?',
    'confirm.endAllText': { one: '{count} активный посетитель увидит «завершено оператором», звонок будет прерван.', few: 'Все {count} активных посетителя увидят «завершено оператором», звонки будут прерваны.', many: 'Все {count} активных посетителей увидят «завершено оператором», звонки будут прерваны.', other: 'Все {count} активных посетителя увидят «завершено оператором», звонки будут прерваны.' },
    'confirm.endAllOk': 'Завершить все',
    'confirm.removeTitle': 'Убрать посетителя {id} из очереди?',
    'confirm.removeText': 'Посетитель ({address}, место {position}) потеряет место и узнает об этом. Остальные продвинутся.',
    'confirm.removeOk': 'Убрать',
    'confirm.pauseTitle': 'Приостановить приём?',
    'confirm.pauseText': 'Текущие разговоры продолжатся, но новых собеседников не впустят, пока вы не возобновите приём. Ожидающие сохраняют место и видят «приостановлено оператором».',
    'confirm.pauseOk': 'Приостановить',
    'confirm.resumeTitle': 'Возобновить приём?',
    'confirm.resumeText': 'Свободные места сразу займут следующие в очереди, по порядку.',
    'confirm.resumeOk': 'Возобновить',
    'confirm.limitsTitle': 'Изменить лимиты?',
    'confirm.limitsText': '{users} одновременно, до {duration} на разговор. Действует для новых допусков; никого не прерывают.',
    'confirm.limitsOk': 'Применить',
    'confirm.people': { one: '{count} человек', few: '{count} человека', many: '{count} человек', other: '{count} человека' },

    'done.ended': 'Сессия {id} завершена.',
    'done.endedAll': { one: 'Завершена {count} сессия.', few: 'Завершено {count} сессии.', many: 'Завершено {count} сессий.', other: 'Завершено {count} сессии.' },
    'done.removed': 'Посетитель {id} убран из очереди.',
    'done.paused': 'Приём приостановлен.',
    'done.resumed': 'Приём возобновлён.',
    'done.limits': 'Лимиты изменены.',
    'done.gone': 'Делать нечего: это уже закончилось.',
    'done.failed': 'Не получилось: {message}',

    'sessions.title': 'Активные сессии',
    'sessions.empty': 'Сейчас никто не говорит.',
    'session.name': 'Сессия {id}',
    'session.started': 'Начало',
    'session.left': 'Осталось',
    'session.mode': 'Режим',
    'session.call': 'Звонок',
    'session.address': 'Адрес',
    'session.instance': 'Экземпляр',
    'session.cost': 'Стоимость',
    'mode.token': 'токен',
    'mode.relay': 'ретрансляция',
    'call.yes': 'подключён',
    'call.no': 'ещё нет',
    'cost.unknown': 'пока неизвестна',

    'queue.title': 'Очередь',
    'queue.empty': 'Никто не ждёт.',
    'entry.name': 'Место {position}',
    'entry.id': 'Посетитель',
    'entry.waiting': 'Ждёт',
    'entry.connected': 'Страница',
    'entry.address': 'Адрес',
    'connected.yes': 'открыта',
    'connected.no': 'закрыта',

    'today.title': 'Сегодня',
    'today.sessions': 'Сессий начато / завершено',
    'today.minutes': 'Минут разговора',
    'today.cost': 'Стоимость',
    'today.costValue': '{estimated} по оценке',
    'today.costBoth': '{real} по счёту ({estimated} по оценке)',
    'budget.day': 'Бюджет на день',
    'budget.month': 'Бюджет на месяц',
    'budget.of': '{spent} из {budget} ({percent})',
    'budget.ok': 'Обнулится {time}.',
    'budget.exhausted': 'Бюджет исчерпан: новых не впускают до {time}.',
    'budget.none': 'Бюджет на этом сервере не задан.',

    'upstream.title': 'OpenAI',
    'upstream.ok': 'Ошибок с запуска сервера не было',
    'upstream.errored': 'Были ошибки — см. последнюю',
    'upstream.quota': 'Квота исчерпана: приём ждёт до {time}',
    'upstream.lastError': 'Последняя ошибка',
    'upstream.latency': 'Задержка p50 / p90',
    'upstream.errorValue': '{status} {code}, {ago}',
    'upstream.latencyValue': '{p50} мс / {p90} мс',
    'upstream.none': 'нет',
    'upstream.noSamples': 'звонков ещё не было',

    'instances.title': 'Экземпляры',
    'instance.health': 'Состояние',
    'instance.healthy': 'работает',
    'instance.down': 'не отвечает',
    'instance.seen': 'Последний сигнал',
    'instance.sessions': 'Сессии',
    'instance.connections': 'Соединения',
    'instance.this': '{id} (этот)',

    'ago.seconds': { one: '{count} секунду назад', few: '{count} секунды назад', many: '{count} секунд назад', other: '{count} секунды назад' },
    'ago.minutes': { one: '{count} минуту назад', few: '{count} минуты назад', many: '{count} минут назад', other: '{count} минуты назад' },
    'ago.hours': { one: '{count} час назад', few: '{count} часа назад', many: '{count} часов назад', other: '{count} часа назад' },
    // After "до" (up to), so in the genitive: "до 5 минут".
    'duration.minutes': { one: '{count} минуты', few: '{count} минут', many: '{count} минут', other: '{count} минуты' },
    'duration.seconds': { one: '{count} секунды', few: '{count} секунд', many: '{count} секунд', other: '{count} секунды' },
  },
};

// The visitor page's key: one language choice for both pages.
const STORAGE_KEY = 'voice-broker.language';
let current = 'en';

export function language() {
  return current;
}

// t('confirm.people', {count: 3}) picks the plural form for `count` and fills {placeholders};
// {duration} is made from the durationSeconds parameter, in the current language.
export function t(key, params = {}) {
  let entry = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  if (typeof entry === 'object') {
    entry = entry[new Intl.PluralRules(current).select(params.count)] ?? entry.other;
  }
  const values = 'durationSeconds' in params ? { ...params, duration: formatDuration(params.durationSeconds) } : params;
  return entry.replace(/\{(\w+)\}/g, (match, name) => String(values[name] ?? match));
}

export function formatDuration(totalSeconds) {
  const minutes = Math.floor(totalSeconds / 60);
  const seconds = Math.round(totalSeconds % 60);
  const parts = [];
  if (minutes) parts.push(t('duration.minutes', { count: minutes }));
  if (seconds || !minutes) parts.push(t('duration.seconds', { count: seconds }));
  return parts.join(' ');
}

// Sets an element's text from the table and remembers the key, so a language switch can redo it.
// The same text is never written twice: a live region would announce it again.
export function localize(element, key, params) {
  const encoded = params ? JSON.stringify(params) : undefined;
  const text = t(key, params);
  if (element.dataset.i18n === key && element.dataset.i18nParams === encoded && element.textContent === text) return;
  element.dataset.i18n = key;
  if (encoded) element.dataset.i18nParams = encoded;
  else delete element.dataset.i18nParams;
  element.textContent = text;
}

// Shows text that does not come from the table (a number, a server's message).
export function showVerbatim(element, text) {
  if (!('i18n' in element.dataset) && element.textContent === text) return;
  delete element.dataset.i18n;
  delete element.dataset.i18nParams;
  element.textContent = text;
}

// An attribute (aria-label) from the table, redone on a language switch.
export function localizeLabel(element, key, params) {
  element.dataset.i18nLabel = key;
  if (params) element.dataset.i18nLabelParams = JSON.stringify(params);
  element.setAttribute('aria-label', t(key, params));
}

const listeners = new Set();

// Runs after every translation of the page (texts the table cannot redo by itself: numbers,
// times, money in the language's format).
export function onLanguageChange(listener) {
  listeners.add(listener);
}

function translatePage() {
  document.documentElement.lang = current;
  for (const element of document.querySelectorAll('[data-i18n]')) {
    const params = element.dataset.i18nParams ? JSON.parse(element.dataset.i18nParams) : undefined;
    element.textContent = t(element.dataset.i18n, params);
  }
  for (const element of document.querySelectorAll('[data-i18n-label]')) {
    const params = element.dataset.i18nLabelParams ? JSON.parse(element.dataset.i18nLabelParams) : undefined;
    element.setAttribute('aria-label', t(element.dataset.i18nLabel, params));
  }
  for (const element of document.querySelectorAll('[data-i18n-content]')) {
    element.setAttribute('content', t(element.dataset.i18nContent));
  }
  for (const listener of listeners) listener(current);
}

export function setLanguage(lang) {
  current = STRINGS[lang] ? lang : 'en';
  try {
    localStorage.setItem(STORAGE_KEY, current);
  } catch {
    // Storage can be disabled; the choice then lasts for this page only.
  }
  translatePage();
}

// The remembered choice first, then the browser's preferred languages, then English.
export function initLanguage() {
  let saved = null;
  try {
    saved = localStorage.getItem(STORAGE_KEY);
  } catch {
    saved = null;
  }
  const preferred = [saved, ...(navigator.languages ?? [navigator.language])]
    .filter(Boolean)
    .map(tag => tag.slice(0, 2).toLowerCase());
  current = preferred.find(lang => STRINGS[lang]) ?? 'en';
  translatePage();
}
