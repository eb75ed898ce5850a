// Live transcript of both sides, built from the Realtime data-channel events (text only, never HTML).
import { localize } from './i18n.js';

const ASSISTANT_DELTA = new Set(['response.output_audio_transcript.delta', 'response.audio_transcript.delta']);
const ASSISTANT_DONE = new Set(['response.output_audio_transcript.done', 'response.audio_transcript.done']);

export class Transcript {
  // list: the <ol> that gets one <li> per turn; scroller: the box that scrolls it.
  constructor(list, scroller) {
    this.list = list;
    this.scroller = scroller;
    this.turns = new Map();  // conversation item id -> the element holding its text
  }

  clear() {
    this.list.replaceChildren();
    this.turns.clear();
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
