// A seconds counter that runs down by itself between corrections from the server.

const TICK_MS = 250;
// Pushes carry whole seconds: ignoring corrections this small keeps the display from jittering.
const TOLERANCE_MS = 1000;

export class Countdown {
  // onTick(secondsLeft) runs at once on set() and whenever the shown second changes.
  constructor(onTick) {
    this.onTick = onTick;
    this.deadline = null;
    this.shown = null;
    this.timer = null;
  }

  set(seconds) {
    const deadline = performance.now() + Math.max(0, seconds) * 1000;
    if (this.deadline === null || Math.abs(deadline - this.deadline) > TOLERANCE_MS) {
      this.deadline = deadline;
    }
    this.timer ??= setInterval(() => this.tick(), TICK_MS);
    this.tick();
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.deadline = null;
    this.shown = null;
  }

  get secondsLeft() {
    return this.deadline === null ? 0 : Math.max(0, Math.ceil((this.deadline - performance.now()) / 1000));
  }

  tick() {
    const seconds = this.secondsLeft;
    if (seconds === this.shown) return;
    this.shown = seconds;
    this.onTick(seconds);
  }
}

// 65 -> "1:05", 3725 -> "62:05": minutes are never wrapped into hours, sessions are short.
export function formatClock(totalSeconds) {
  const minutes = Math.floor(totalSeconds / 60);
  const seconds = String(totalSeconds % 60).padStart(2, '0');
  return `${minutes}:${seconds}`;
}
