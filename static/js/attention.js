// Calls a visitor who is looking at another tab or window back when their turn comes: the tab's
// title, a vibration where the device has one, and a system notification if they allowed it
// (asked from a button in the queue, never on load). The chime is in sound.js.
import { localize, t } from './i18n.js';

const title = () => document.querySelector('title');
const away = () => document.visibilityState === 'hidden' || !document.hasFocus();
let calling = null;  // {notification} while the visitor has not come back

export function notificationPermission() {
  if (!('Notification' in window) || !window.isSecureContext) return 'unsupported';
  return Notification.permission;
}

export async function askForNotifications() {
  try {
    return await Notification.requestPermission();
  } catch {
    return notificationPermission();
  }
}

export function signalTurn() {
  try {
    navigator.vibrate?.([200, 100, 200]);
  } catch {
    // Some browsers refuse without a recent tap; the other signals still go out.
  }
  if (!away()) return;
  calling = { notification: null };
  localize(title(), 'title.turn');
  if (notificationPermission() !== 'granted') return;
  try {
    const notification = new Notification(t('notify.title'), {
      body: t('notify.body'),
      tag: 'voice-broker-turn',
      icon: document.querySelector('link[rel=icon]')?.href,
    });
    notification.addEventListener('click', () => window.focus());
    calling.notification = notification;
  } catch {
    // Chrome on Android shows notifications only through a service worker; the title and the
    // chime remain.
  }
}

function cameBack() {
  if (!calling || away()) return;
  calling.notification?.close();
  calling = null;
  localize(title(), 'page.title');
}

document.addEventListener('visibilitychange', cameBack);
window.addEventListener('focus', cameBack);
