// Microphone level meter: an AnalyserNode read every frame into the --level CSS property (0..1).

const FLOOR_DB = -60;   // quieter than this shows as an empty bar
const DECAY = 0.9;      // falls back gently instead of flickering

export function startLevelMeter(audioContext, stream, element) {
  const source = audioContext.createMediaStreamSource(stream);
  const analyser = audioContext.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let level = 0;
  let frame = 0;

  const draw = () => {
    analyser.getFloatTimeDomainData(samples);
    const power = samples.reduce((sum, sample) => sum + sample * sample, 0) / samples.length;
    const decibels = 10 * Math.log10(power || 1e-12);
    const target = Math.min(1, Math.max(0, (decibels - FLOOR_DB) / -FLOOR_DB));
    level = Math.max(target, level * DECAY);
    element.style.setProperty('--level', level.toFixed(3));
    frame = requestAnimationFrame(draw);
  };
  draw();

  return function stop() {
    cancelAnimationFrame(frame);
    source.disconnect();
    element.style.setProperty('--level', '0');
  };
}
