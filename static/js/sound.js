// Short sound cues made with WebAudio, so the page ships no audio files.

export function createSound(audioContext) {
  function tone(frequency, startsIn, duration) {
    const at = audioContext.currentTime + startsIn;
    const oscillator = audioContext.createOscillator();
    const gain = audioContext.createGain();
    oscillator.type = 'sine';
    oscillator.frequency.value = frequency;
    // A quick fade in and out: a bare on/off would click.
    gain.gain.setValueAtTime(0.0001, at);
    gain.gain.exponentialRampToValueAtTime(0.25, at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + duration);
    oscillator.connect(gain).connect(audioContext.destination);
    oscillator.start(at);
    oscillator.stop(at + duration + 0.05);
  }

  return {
    admitted() {
      tone(660, 0, 0.15);
      tone(990, 0.18, 0.25);
    },
    warning() {
      tone(880, 0, 0.15);
      tone(880, 0.25, 0.15);
    },
    ended() {
      tone(660, 0, 0.2);
      tone(440, 0.25, 0.4);
    },
  };
}
