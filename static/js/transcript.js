// Live transcript of both sides, built from the Realtime data-channel events (text only, never HTML).
// It lasts as long as the page: a new conversation is added below the earlier ones, and the whole
// can be taken away as plain text.
import { language, localize, t } from './i18n.js';

const ASSISTANT_DELTA = new Set(['response.output_audio_transcript.delta', 'response.audio_transcript.delta']);
const ASSISTANT_DONE = new Set(['response.output_audio_transcript.done', 'response.audio_transcript.done']);

export class Transcript {
  // list: the <ol> that gets one <li> per turn; scroller: the box that scrolls it.
  constructor(list, scroller) {
    this.list = list;
    this.scroller = scroller;
    this.turns = new Map();  // conversation item id -> the element holding its text
    this.conversations = 0;
    this.firstAt = null;
  }

  get empty() {
    return !this.list.querySelector('.turn');
  }

  // A new call: the earlier conversations stay, each under a heading once there are two.
  beginConversation(now = new Date()) {
    this.turns.clear();
    if (this.empty) {
      this.list.replaceChildren();
      this.conversations = 0;
    } else if (this.list.lastElementChild?.classList.contains('turn-divider')) {
      this.list.lastElementChild.remove();  // the last call had no words: its number is reused
      this.conversations--;
    }
    this.conversations++;
    if (this.conversations === 1) this.firstAt = now;
    if (this.conversations === 2) this.list.prepend(this.divider(1, this.firstAt));
    if (this.conversations >= 2) this.list.append(this.divider(this.conversations, now));
  }

  divider(number, at) {
    const item = document.createElement('li');
    item.className = 'turn-divider';
    const time = at.toLocaleTimeString(language(), { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    localize(item, 'transcript.conversation', { count: number, time });
    return item;
  }

  // Everything said so far, as plain text in the page's language.
  toText() {
    const lines = [t('transcript.fileTitle')];
    for (const item of this.list.children) {
      if (item.classList.contains('turn-divider')) {
        lines.push('', item.textContent);
        continue;
      }
      const who = item.querySelector('.turn__who')?.textContent ?? '';
      const text = item.querySelector('.turn__text')?.textContent.trim() ?? '';
      if (text) lines.push(`${who}: ${text}`);
    }
    return `${lines.join('\n')}\n`;
  }

  // At the end of a call: words still being transcribed will not come, so stop waiting for them.
  settle() {
    for (const [itemId, text] of this.turns) {
      text.classList.remove('is-pending');
      if (!text.textContent.trim()) {
        text.closest('li').remove();
        this.turns.delete(itemId);
      }
    }
  }

  handle(event) {
    const box = this.scroller;
    const followingTheEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    this.apply(event);
    if (followingTheEnd) box.scrollTop = box.scrollHeight;
  }

  apply(event) {
    switch (event.type) {
      // The visitor's words are transcribed after they stop speaking, often once the answer has
      // begun: a placeholder taken at commit time keeps the turns in spoken order.
      case 'input_audio_buffer.committed':
        this.text(event.item_id, 'you');
        break;
      case 'conversation.item.input_audio_transcription.delta':
        this.text(event.item_id, 'you').textContent += event.delta ?? '';
        break;
      case 'conversation.item.input_audio_transcription.completed':
        this.finish(event.item_id, 'you', event.transcript);
        break;
      case 'conversation.item.input_audio_transcription.failed':
        this.finish(event.item_id, 'you', '');
        break;
      default:
        if (ASSISTANT_DELTA.has(event.type)) this.text(event.item_id, 'assistant').textContent += event.delta ?? '';
        else if (ASSISTANT_DONE.has(event.type)) this.finish(event.item_id, 'assistant', event.transcript);
    }
  }

  finish(itemId, speaker, finalText) {
    const text = this.text(itemId, speaker);
    if (typeof finalText === 'string') text.textContent = finalText.trim();
    text.classList.remove('is-pending');
    if (!text.textContent) {
      text.closest('li').remove();
      this.turns.delete(itemId);
    }
  }

  text(itemId, speaker) {
    const id = itemId ?? `${speaker}-latest`;
    let text = this.turns.get(id);
    if (text) return text;

    const turn = document.createElement('li');
    turn.className = `turn turn--${speaker}`;
    const who = document.createElement('span');
    who.className = 'turn__who';
    localize(who, `transcript.${speaker}`);
    text = document.createElement('p');
    text.className = 'turn__text is-pending';
    turn.append(who, text);
    this.list.append(turn);
    this.turns.set(id, text);
    return text;
  }
}
