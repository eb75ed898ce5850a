// Every visible string of the page, in English and Russian, and the helpers that put them on screen.

const STRINGS = {
  en: {
    'page.title': 'Voice assistant',
    'brand': 'Voice assistant',
    'skip': 'Skip to content',
    'lang.label': 'Language',
    'footer': 'Your voice is sent to OpenAI only while a conversation is running.',

    'state.idle': 'Ready',
    'state.joining': 'Connecting…',
    'state.queued': 'In queue',
    'state.next': 'You’re next',
    'state.connecting': 'Starting call…',
    'state.active': 'Live',
    'state.ended': 'Ended',
    'state.failed': 'Problem',

    'idle.title': 'Talk with the AI assistant',
    'idle.lead': 'Press Start and speak naturally. Conversations have a time limit; if someone else is talking, you wait in a short queue and see your place.',
    'idle.mic': 'Your browser will ask for the microphone when your turn comes.',
    'idle.start': 'Start',
    'idle.starting': 'Connecting…',

    'queue.title': 'You’re in the queue',
    'queue.position': 'Your place',
    'queue.eta': 'Longest wait',
    'queue.etaSoon': 'any moment',
    'queue.next': 'You’re next — get ready to talk.',
    'queue.waiting': { one: '{count} person waiting', other: '{count} people waiting' },
    'queue.keepOpen': 'Keep this page open: the call starts by itself when it’s your turn.',
    'queue.leave': 'Leave queue',

    'call.askMic': 'Allow the microphone to start talking.',
    'call.connecting': 'Connecting to the assistant…',
    'call.live': 'Connected — just start talking.',
    'call.timeLeft': 'Time left',
    'call.mic': 'Microphone level',
    'call.mute': 'Mute',
    'call.muted': 'Your microphone is muted: the assistant can’t hear you.',
    'call.end': 'End',
    'warning.minutes': { one: '{count} minute left', other: '{count} minutes left' },
    'warning.seconds': { one: '{count} second left', other: '{count} seconds left' },
    'warning.hint': 'The conversation ends automatically.',

    'transcript.title': 'Transcript',
    'transcript.empty': 'What you and the assistant say will appear here.',
    'transcript.you': 'You',
    'transcript.assistant': 'Assistant',

    'ended.expired.title': 'Time is up',
    'ended.expired.text': 'Your conversation reached its time limit. Thank you!',
    'ended.forced.title': 'Ended by the operator',
    'ended.forced.text': 'The operator ended the running conversations.',
    'ended.left.title': 'You left',
    'ended.left.text': 'Your place has been freed for the next person.',
    'ended.abandoned.title': 'Connection lost',
    'ended.abandoned.text': 'The server stopped hearing from this page and closed the session. Check your network connection.',
    'ended.shutdown.title': 'Server restarting',
    'ended.shutdown.text': 'The server is restarting. Queue again in a minute.',
    'ended.unknown.title': 'Session not found',
    'ended.unknown.text': 'The server no longer knows this session; it may have restarted.',
    'ended.again': 'Queue again',

    'notice.polling': 'Live updates interrupted — reconnecting…',
    'notice.unreachable': 'Server restarting, reconnecting…',

    'error.retry': 'Try again',
    'error.insecure_context.title': 'The microphone needs a secure connection',
    'error.insecure_context.text': 'Browsers allow the microphone only on HTTPS pages or on localhost. Open this page through https:// (the operator can enable TLS), or on the server itself through http://localhost.',
    'error.no_webrtc.title': 'This browser can’t make voice calls',
    'error.no_webrtc.text': 'Open this page in a current version of Chrome, Edge, Firefox or Safari.',
    'error.mic_denied.title': 'Microphone access is blocked',
    'error.mic_denied.text': 'Allow the microphone for this site: click the lock or microphone icon in the address bar, set Microphone to Allow, then try again.',
    'error.mic_missing.title': 'No microphone found',
    'error.mic_missing.text': 'Connect a microphone or headset, check that it is enabled in the system settings, then try again.',
    'error.mic_busy.title': 'The microphone is busy',
    'error.mic_busy.text': 'Another app is using the microphone. Close it, then try again.',
    'error.not_configured.title': 'The voice service is not set up',
    'error.not_configured.text': 'The operator hasn’t connected the assistant yet (no OpenAI key). Please try again later.',
    'error.upstream.title': 'The voice service didn’t answer',
    'error.upstream.text': 'OpenAI is unavailable or slow right now. Try again in a minute.',
    'error.queue_full.title': 'The queue is full',
    'error.queue_full.text': 'Too many people are waiting. Try again in {seconds} seconds.',
    'error.token_limit.title': 'Too many call attempts',
    'error.token_limit.text': 'This session has used all its attempts to connect. Queue again to start fresh.',
    'error.not_active.title': 'Your turn has passed',
    'error.not_active.text': 'The place went to the next person. Queue again.',
    'error.call_failed.title': 'The call dropped',
    'error.call_failed.text': 'The audio connection to the assistant was lost. Check your network, then try again.',
    'error.unreachable.title': 'The server can’t be reached',
    'error.unreachable.text': 'Check your connection, then try again.',
    'error.generic.title': 'Something went wrong',
    'error.generic.text': 'Please try again.',
  },
  ru: {
    'page.title': 'Голосовой ассистент',
    'brand': 'Голосовой ассистент',
    'skip': 'Перейти к содержимому',
    'lang.label': 'Язык',
    'footer': 'Ваш голос передаётся в OpenAI только во время разговора.',

    'state.idle': 'Готово',
    'state.joining': 'Подключение…',
    'state.queued': 'В очереди',
    'state.next': 'Вы следующий',
    'state.connecting': 'Запуск разговора…',
    'state.active': 'В эфире',
    'state.ended': 'Завершено',
    'state.failed': 'Ошибка',

    'idle.title': 'Поговорите с ИИ‑ассистентом',
    'idle.lead': 'Нажмите «Начать» и говорите как обычно. Время разговора ограничено; если кто-то уже говорит, вы подождёте в короткой очереди и увидите своё место.',
    'idle.mic': 'Браузер попросит доступ к микрофону, когда подойдёт ваша очередь.',
    'idle.start': 'Начать',
    'idle.starting': 'Подключение…',

    'queue.title': 'Вы в очереди',
    'queue.position': 'Ваше место',
    'queue.eta': 'Макс. ожидание',
    'queue.etaSoon': 'вот-вот',
    'queue.next': 'Вы следующий — приготовьтесь говорить.',
    'queue.waiting': {
      one: 'В очереди {count} человек', few: 'В очереди {count} человека',
      many: 'В очереди {count} человек', other: 'В очереди {count} человека',
    },
    'queue.keepOpen': 'Не закрывайте страницу: разговор начнётся сам, когда подойдёт ваша очередь.',
    'queue.leave': 'Покинуть очередь',

    'call.askMic': 'Разрешите доступ к микрофону, чтобы начать разговор.',
    'call.connecting': 'Соединение с ассистентом…',
    'call.live': 'Соединено — просто начните говорить.',
    'call.timeLeft': 'Осталось',
    'call.mic': 'Уровень микрофона',
    'call.mute': 'Откл. микрофон',
    'call.muted': 'Микрофон выключен: ассистент вас не слышит.',
    'call.end': 'Завершить',
    'warning.minutes': {
      one: 'Осталась {count} минута', few: 'Осталось {count} минуты',
      many: 'Осталось {count} минут', other: 'Осталось {count} минуты',
    },
    'warning.seconds': {
      one: 'Осталась {count} секунда', few: 'Осталось {count} секунды',
      many: 'Осталось {count} секунд', other: 'Осталось {count} секунды',
    },
    'warning.hint': 'Разговор завершится автоматически.',

    'transcript.title': 'Текст разговора',
    'transcript.empty': 'Здесь появятся ваши реплики и ответы ассистента.',
    'transcript.you': 'Вы',
    'transcript.assistant': 'Ассистент',

    'ended.expired.title': 'Время вышло',
    'ended.expired.text': 'Отведённое на разговор время закончилось. Спасибо!',
    'ended.forced.title': 'Разговор завершён оператором',
    'ended.forced.text': 'Оператор завершил текущие разговоры.',
    'ended.left.title': 'Вы вышли',
    'ended.left.text': 'Ваше место освобождено для следующего человека.',
    'ended.abandoned.title': 'Связь потеряна',
    'ended.abandoned.text': 'Сервер перестал получать сигналы от этой страницы и закрыл сессию. Проверьте подключение к сети.',
    'ended.shutdown.title': 'Сервер перезапускается',
    'ended.shutdown.text': 'Сервер перезапускается. Встаньте в очередь снова через минуту.',
    'ended.unknown.title': 'Сессия не найдена',
    'ended.unknown.text': 'Сервер больше не знает эту сессию — возможно, он был перезапущен.',
    'ended.again': 'Встать в очередь снова',

    'notice.polling': 'Обновления прервались — переподключаемся…',
    'notice.unreachable': 'Сервер перезапускается, переподключаемся…',

    'error.retry': 'Попробовать снова',
    'error.insecure_context.title': 'Микрофону нужно защищённое соединение',
    'error.insecure_context.text': 'Браузеры дают доступ к микрофону только на страницах HTTPS или на localhost. Откройте страницу по адресу https:// (оператор может включить TLS) или на самом сервере через http://localhost.',
    'error.no_webrtc.title': 'Этот браузер не поддерживает голосовые звонки',
    'error.no_webrtc.text': 'Откройте страницу в свежей версии Chrome, Edge, Firefox или Safari.',
    'error.mic_denied.title': 'Доступ к микрофону запрещён',
    'error.mic_denied.text': 'Разрешите микрофон для этого сайта: нажмите на значок замка или микрофона в адресной строке, выберите «Разрешить» для микрофона и попробуйте снова.',
    'error.mic_missing.title': 'Микрофон не найден',
    'error.mic_missing.text': 'Подключите микрофон или гарнитуру, проверьте, что он включён в настройках системы, и попробуйте снова.',
    'error.mic_busy.title': 'Микрофон занят',
    'error.mic_busy.text': 'Микрофон использует другая программа. Закройте её и попробуйте снова.',
    'error.not_configured.title': 'Голосовой сервис не настроен',
    'error.not_configured.text': 'Оператор ещё не подключил ассистента (нет ключа OpenAI). Попробуйте позже.',
    'error.upstream.title': 'Голосовой сервис не ответил',
    'error.upstream.text': 'OpenAI сейчас недоступен или отвечает слишком долго. Попробуйте снова через минуту.',
    'error.queue_full.title': 'Очередь заполнена',
    'error.queue_full.text': 'Сейчас ждёт слишком много людей. Попробуйте снова через {seconds} с.',
    'error.token_limit.title': 'Слишком много попыток соединения',
    'error.token_limit.text': 'В этой сессии исчерпаны попытки подключиться. Встаньте в очередь заново.',
    'error.not_active.title': 'Ваша очередь прошла',
    'error.not_active.text': 'Место перешло к следующему человеку. Встаньте в очередь заново.',
    'error.call_failed.title': 'Связь с ассистентом прервалась',
    'error.call_failed.text': 'Аудиосоединение потеряно. Проверьте сеть и попробуйте снова.',
    'error.unreachable.title': 'Сервер недоступен',
    'error.unreachable.text': 'Проверьте подключение к сети и попробуйте снова.',
    'error.generic.title': 'Что-то пошло не так',
    'error.generic.text': 'Попробуйте снова.',
  },
};

export const LANGUAGES = Object.keys(STRINGS);
const STORAGE_KEY = 'voice-broker.language';
let current = 'en';

export function language() {
  return current;
}

export function has(key) {
  return key in STRINGS.en;
}

// t('queue.waiting', {count: 3}) picks the plural form for `count` and fills {placeholders}.
export function t(key, params = {}) {
  let entry = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  if (typeof entry === 'object') {
    entry = entry[new Intl.PluralRules(current).select(params.count)] ?? entry.other;
  }
  return entry.replace(/\{(\w+)\}/g, (match, name) => String(params[name] ?? match));
}

// Sets an element's text from the table and remembers the key, so a language switch can redo it.
export function localize(element, key, params) {
  element.dataset.i18n = key;
  if (params) element.dataset.i18nParams = JSON.stringify(params);
  else delete element.dataset.i18nParams;
  element.textContent = t(key, params);
}

// Shows text that does not come from the table (a server's message) and stops re-translating it.
export function showVerbatim(element, text) {
  delete element.dataset.i18n;
  delete element.dataset.i18nParams;
  element.textContent = text;
}

function translatePage() {
  document.documentElement.lang = current;
  for (const element of document.querySelectorAll('[data-i18n]')) {
    const params = element.dataset.i18nParams ? JSON.parse(element.dataset.i18nParams) : undefined;
    element.textContent = t(element.dataset.i18n, params);
  }
  for (const element of document.querySelectorAll('[data-i18n-label]')) {
    element.setAttribute('aria-label', t(element.dataset.i18nLabel));
  }
}

export function setLanguage(lang) {
  current = STRINGS[lang] ? lang : 'en';
  try {
    localStorage.setItem(STORAGE_KEY, current);
  } catch {
    // Storage can be disabled (private mode); the choice then lasts for this page only.
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
