// Every visible string of the page, in English and Russian, and the helpers that put them on screen.

const STRINGS = {
  en: {
    'page.title': 'Voice assistant',
    'page.description': 'Talk with an AI voice assistant in your browser. Each conversation has a time limit; if someone else is talking, you wait in a short queue and see your place.',
    'title.turn': 'Your turn! · Voice assistant',
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
    'idle.lead': 'Press Start and speak naturally.',
    'idle.length': 'Each conversation lasts up to {duration}.',
    'idle.lengthUnknown': 'Each conversation has a time limit.',
    'idle.free': 'A place is free now: you can start right away.',
    'idle.busyOne': 'Someone is talking now, so you’ll wait in a short queue and see your place.',
    'idle.busyMany': { one: 'All {count} places are taken, so you’ll wait in a short queue and see your place.', other: 'All {count} places are taken, so you’ll wait in a short queue and see your place.' },
    'idle.waiting': { one: '{count} person is waiting.', other: '{count} people are waiting.' },
    'idle.loadUnknown': 'If someone else is talking, you wait in a short queue and see your place.',
    'idle.mic': 'Your browser will ask for the microphone when your turn comes.',
    'idle.start': 'Start',
    'idle.starting': 'Connecting…',

    'queue.title': 'You’re in the queue',
    'queue.position': 'Your place',
    'queue.eta': 'Longest wait',
    'queue.etaSoon': 'any moment',
    'queue.etaPaused': 'paused',
    'queue.next': 'You’re next — get ready to talk.',
    'queue.ahead': { one: '{count} person is ahead of you.', other: '{count} people are ahead of you.' },
    'queue.busyOne': 'Someone is talking now.',
    'queue.busyMany': { one: 'All {count} places are taken.', other: 'All {count} places are taken.' },
    'queue.paused': 'The operator has paused new conversations; your place is kept.',
    'queue.budgetPaused': 'The budget for conversations is spent: nobody is admitted until {date}, {time} ({zone}). Your place is kept.',
    'queue.quotaPaused': 'The voice service is out of credit with OpenAI: new conversations are paused until {time} ({zone}). Your place is kept.',
    'queue.length': 'Each conversation lasts up to {duration}.',
    'queue.keepOpen': 'Keep this page open: the call starts by itself when it’s your turn.',
    'queue.notify': 'Notify me when it’s my turn',
    'queue.notifyOn': 'You’ll get a notification when it’s your turn.',
    'queue.notifyBlocked': 'Notifications are blocked for this site: keep this tab open and listen for the chime.',
    'queue.leave': 'Leave queue',

    'notify.title': 'Your turn to talk',
    'notify.body': 'Come back to the voice assistant: your conversation is starting.',

    'call.title': 'Conversation with the assistant',
    'call.askMic': 'Allow the microphone to start talking.',
    'call.connecting': 'Connecting to the assistant…',
    'call.timeLeft': 'Time left',
    'call.mic': 'Microphone level',
    'call.mute': 'Mute microphone',
    'call.unmute': 'Unmute microphone',
    'call.end': 'End',
    'activity.listening': 'Listening — go ahead and talk',
    'activity.hearing': 'Hearing you…',
    'activity.thinking': 'Thinking…',
    'activity.speaking': 'The assistant is speaking',
    'activity.muted': 'Microphone off: the assistant can’t hear you',
    'warning.minutes': { one: '{count} minute left', other: '{count} minutes left' },
    'warning.seconds': { one: '{count} second left', other: '{count} seconds left' },
    'warning.hint': 'The conversation ends automatically.',

    'transcript.title': 'Transcript',
    'transcript.empty': 'What you and the assistant say will appear here.',
    'transcript.you': 'You',
    'transcript.assistant': 'Assistant',
    'transcript.conversation': 'Conversation {count}, {time}',
    'transcript.fileTitle': 'Voice assistant: transcript',
    'transcript.copy': 'Copy text',
    'transcript.download': 'Download .txt',
    'transcript.copied': 'Copied to the clipboard.',
    'transcript.copyFailed': 'Couldn’t copy: select the text and copy it, or download it.',
    'transcript.downloaded': 'Saved as {file}.',

    'duration.minutes': { one: '{count} minute', other: '{count} minutes' },
    'duration.seconds': { one: '{count} second', other: '{count} seconds' },

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
    'ended.removed.title': 'Removed from the queue',
    'ended.removed.text': 'The operator removed your place in the queue.',
    'ended.budget_exhausted.title': 'No more conversations today',
    'ended.budget_exhausted.text': 'The service has used up today’s budget. Please come back tomorrow.',
    'ended.idle.title': 'The conversation went quiet',
    'ended.idle.text': { one: 'Ended: no one spoke for {count} second.', other: 'Ended: no one spoke for {count} seconds.' },
    'ended.idle.textQuiet': 'Ended: no one spoke for a while.',
    'ended.call_ended.title': 'The call was lost',
    'ended.call_ended.text': 'Ended: the call to the assistant stopped and did not come back. You can queue again.',
    'ended.other.title': 'The conversation has ended',
    'ended.other.text': 'You can queue again at any time.',
    'ended.again': 'Queue again',

    'notice.reconnecting': 'Connection interrupted — reconnecting… Your place is kept.',
    'notice.unreachable': 'The server can’t be reached — retrying…',
    'notice.unreachableQueued': 'The server can’t be reached — retrying. The wait time is paused until it answers.',
    'notice.joinRetry': 'The server is restarting — trying again…',
    'notice.storeRetry': 'The server is busy — trying again…',

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
    'error.budget_exhausted.title': 'No more conversations today',
    'error.budget_exhausted.text': 'Today’s budget for conversations is spent. New conversations start again at {time} ({zone}).',
    'error.budget_exhausted_month.title': 'No more conversations this month',
    'error.budget_exhausted_month.text': 'This month’s budget for conversations is spent. New conversations start again on {date} at {time} ({zone}).',
    'error.budget_exhausted_later.title': 'No more conversations for now',
    'error.budget_exhausted_later.text': 'The service has used up its budget. Please come back later.',
    'error.upstream_quota.title': 'New conversations are paused',
    'error.upstream_quota.text': 'The voice service has run out of credit with OpenAI. Try again in a few minutes.',
    'error.store_unavailable.title': 'The server is busy',
    'error.store_unavailable.text': 'The server can’t reach its storage right now. Try again in a few seconds.',
    'error.paused.title': 'Conversations are paused',
    'error.paused.text': 'The operator has paused new conversations. Try again in a few minutes.',
    'error.generic.title': 'Something went wrong',
    'error.generic.text': 'Please try again.',
  },
  ru: {
    'page.title': 'Голосовой ассистент',
    'page.description': 'Поговорите с голосовым ИИ-ассистентом прямо в браузере. Время разговора ограничено; если кто-то уже говорит, вы подождёте в короткой очереди и увидите своё место.',
    'title.turn': 'Ваша очередь! · Голосовой ассистент',
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
    'idle.lead': 'Нажмите «Начать» и говорите как обычно.',
    'idle.length': 'Каждый разговор длится до {duration}.',
    'idle.lengthUnknown': 'Время разговора ограничено.',
    'idle.free': 'Сейчас есть свободное место: можно начать сразу.',
    'idle.busyOne': 'Сейчас кто-то разговаривает: вы подождёте в короткой очереди и увидите своё место.',
    'idle.busyMany': {
      one: 'Все {count} место занято: вы подождёте в короткой очереди и увидите своё место.',
      few: 'Все {count} места заняты: вы подождёте в короткой очереди и увидите своё место.',
      many: 'Все {count} мест заняты: вы подождёте в короткой очереди и увидите своё место.',
      other: 'Все {count} места заняты: вы подождёте в короткой очереди и увидите своё место.',
    },
    'idle.waiting': {
      one: 'В очереди {count} человек.', few: 'В очереди {count} человека.',
      many: 'В очереди {count} человек.', other: 'В очереди {count} человека.',
    },
    'idle.loadUnknown': 'Если кто-то уже говорит, вы подождёте в короткой очереди и увидите своё место.',
    'idle.mic': 'Браузер попросит доступ к микрофону, когда подойдёт ваша очередь.',
    'idle.start': 'Начать',
    'idle.starting': 'Подключение…',

    'queue.title': 'Вы в очереди',
    'queue.position': 'Ваше место',
    'queue.eta': 'Макс. ожидание',
    'queue.etaSoon': 'вот-вот',
    'queue.etaPaused': 'на паузе',
    'queue.next': 'Вы следующий — приготовьтесь говорить.',
    'queue.ahead': {
      one: 'Перед вами {count} человек.', few: 'Перед вами {count} человека.',
      many: 'Перед вами {count} человек.', other: 'Перед вами {count} человека.',
    },
    'queue.busyOne': 'Сейчас кто-то разговаривает.',
    'queue.busyMany': {
      one: 'Все {count} место занято.', few: 'Все {count} места заняты.',
      many: 'Все {count} мест заняты.', other: 'Все {count} места заняты.',
    },
    'queue.paused': 'Оператор приостановил новые разговоры; ваше место сохраняется.',
    'queue.budgetPaused': 'Бюджет на разговоры исчерпан: до {date}, {time} ({zone}) новых разговоров не будет. Ваше место сохраняется.',
    'queue.quotaPaused': 'У голосового сервиса закончился кредит в OpenAI: новые разговоры приостановлены до {time} ({zone}). Ваше место сохраняется.',
    'queue.length': 'Каждый разговор длится до {duration}.',
    'queue.keepOpen': 'Не закрывайте страницу: разговор начнётся сам, когда подойдёт ваша очередь.',
    'queue.notify': 'Уведомить, когда подойдёт очередь',
    'queue.notifyOn': 'Вы получите уведомление, когда подойдёт ваша очередь.',
    'queue.notifyBlocked': 'Уведомления для этого сайта запрещены: не закрывайте вкладку и ждите звукового сигнала.',
    'queue.leave': 'Покинуть очередь',

    'notify.title': 'Ваша очередь',
    'notify.body': 'Вернитесь к голосовому ассистенту: разговор начинается.',

    'call.title': 'Разговор с ассистентом',
    'call.askMic': 'Разрешите доступ к микрофону, чтобы начать разговор.',
    'call.connecting': 'Соединение с ассистентом…',
    'call.timeLeft': 'Осталось',
    'call.mic': 'Уровень микрофона',
    'call.mute': 'Выключить микрофон',
    'call.unmute': 'Включить микрофон',
    'call.end': 'Завершить',
    'activity.listening': 'Слушает — говорите',
    'activity.hearing': 'Слышит вас…',
    'activity.thinking': 'Думает…',
    'activity.speaking': 'Ассистент говорит',
    'activity.muted': 'Микрофон выключен: ассистент вас не слышит',
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
    'transcript.conversation': 'Разговор {count}, {time}',
    'transcript.fileTitle': 'Голосовой ассистент: текст разговора',
    'transcript.copy': 'Копировать',
    'transcript.download': 'Скачать .txt',
    'transcript.copied': 'Скопировано в буфер обмена.',
    'transcript.copyFailed': 'Не удалось скопировать: выделите текст и скопируйте его или скачайте файл.',
    'transcript.downloaded': 'Сохранено как {file}.',

    // Always after "до" (up to), so in the genitive: "до 1 минуты", "до 5 минут".
    'duration.minutes': { one: '{count} минуты', few: '{count} минут', many: '{count} минут', other: '{count} минуты' },
    'duration.seconds': { one: '{count} секунды', few: '{count} секунд', many: '{count} секунд', other: '{count} секунды' },

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
    'ended.removed.title': 'Вы удалены из очереди',
    'ended.removed.text': 'Оператор удалил ваше место в очереди.',
    'ended.budget_exhausted.title': 'На сегодня разговоры закончились',
    'ended.budget_exhausted.text': 'Дневной бюджет сервиса исчерпан. Приходите завтра.',
    'ended.idle.title': 'Разговор затих',
    'ended.idle.text': { one: 'Завершено: никто не говорил {count} секунду.', few: 'Завершено: никто не говорил {count} секунды.', many: 'Завершено: никто не говорил {count} секунд.', other: 'Завершено: никто не говорил {count} секунды.' },
    'ended.idle.textQuiet': 'Завершено: никто долго не говорил.',
    'ended.call_ended.title': 'Звонок оборвался',
    'ended.call_ended.text': 'Завершено: звонок с ассистентом прервался и не восстановился. Можно снова встать в очередь.',
    'ended.other.title': 'Разговор завершён',
    'ended.other.text': 'Вы можете снова встать в очередь в любой момент.',
    'ended.again': 'Снова в очередь',

    'notice.reconnecting': 'Связь прервалась — переподключаемся… Ваше место сохраняется.',
    'notice.unreachable': 'Сервер недоступен — пробуем снова…',
    'notice.unreachableQueued': 'Сервер недоступен — пробуем снова. Время ожидания остановлено, пока он не ответит.',
    'notice.joinRetry': 'Сервер перезапускается — пробуем снова…',
    'notice.storeRetry': 'Сервер занят — пробуем снова…',

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
    'error.budget_exhausted.title': 'На сегодня разговоры закончились',
    'error.budget_exhausted.text': 'Дневной бюджет на разговоры исчерпан. Новые разговоры начнутся в {time} ({zone}).',
    'error.budget_exhausted_month.title': 'В этом месяце разговоры закончились',
    'error.budget_exhausted_month.text': 'Месячный бюджет на разговоры исчерпан. Новые разговоры начнутся {date} в {time} ({zone}).',
    'error.budget_exhausted_later.title': 'Пока разговоров не будет',
    'error.budget_exhausted_later.text': 'Бюджет сервиса исчерпан. Приходите позже.',
    'error.upstream_quota.title': 'Новые разговоры приостановлены',
    'error.upstream_quota.text': 'У голосового сервиса закончился кредит в OpenAI. Попробуйте через несколько минут.',
    'error.store_unavailable.title': 'Сервер занят',
    'error.store_unavailable.text': 'Сервер сейчас не может связаться со своим хранилищем. Попробуйте через несколько секунд.',
    'error.paused.title': 'Разговоры приостановлены',
    'error.paused.text': 'Оператор приостановил новые разговоры. Попробуйте через несколько минут.',
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

// t('queue.ahead', {count: 3}) picks the plural form for `count` and fills {placeholders};
// {duration} is made from the durationSeconds parameter, {time}, {date} and {zone} from resetsAt
// and timeZone, in the current language.
export function t(key, params = {}) {
  let entry = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  if (typeof entry === 'object') {
    entry = entry[new Intl.PluralRules(current).select(params.count)] ?? entry.other;
  }
  const values = { ...params };
  if ('durationSeconds' in params) values.duration = formatDuration(params.durationSeconds);
  if ('resetsAt' in params) Object.assign(values, formatReset(params));
  return entry.replace(/\{(\w+)\}/g, (match, name) => String(values[name] ?? match));
}

// The moment a held queue moves again, as a clock time and a date in the server's budget zone (its
// midnight is what resets the budget), e.g. {time: '00:00', date: '2 December', zone: 'Europe/Berlin'}.
export function formatReset({ resetsAt, resetsAtLocal = '', timeZone = 'UTC' }) {
  try {
    const at = new Date(resetsAt);
    const time = new Intl.DateTimeFormat(current, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone }).format(at);
    const date = new Intl.DateTimeFormat(current, { day: 'numeric', month: 'long', timeZone }).format(at);
    return { time, date, zone: timeZone };
  } catch {
    // A zone this browser does not know: the server's own local time, as it wrote it.
    return { time: resetsAtLocal.slice(11, 16), date: resetsAtLocal.slice(0, 10), zone: timeZone };
  }
}

// "5 minutes", "30 seconds", "2 minutes 30 seconds" (in Russian in the genitive, after "до").
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

// Shows text that does not come from the table (a server's message) and stops re-translating it.
export function showVerbatim(element, text) {
  if (!('i18n' in element.dataset) && element.textContent === text) return;
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
  for (const element of document.querySelectorAll('[data-i18n-content]')) {
    element.setAttribute('content', t(element.dataset.i18nContent));
  }
  for (const listener of listeners) listener(current);
}

const listeners = new Set();

// Runs after every translation of the page (texts the table cannot redo by itself, such as a
// formatted duration).
export function onLanguageChange(listener) {
  listeners.add(listener);
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
