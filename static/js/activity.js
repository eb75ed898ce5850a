// What the assistant is doing during a call, read from the Realtime data-channel events (GA
// names): listening, hearing the visitor, thinking, or speaking.
//
// Over WebRTC the assistant's audio arrives on the media track; output_audio_buffer.started and
// .stopped (or .cleared, when the visitor interrupts) say when it plays. response.done comes
// before the audio has finished, so it only ends "thinking" for a response that had no audio.
export const ACTIVITIES = ['listening', 'hearing', 'thinking', 'speaking'];

export class AssistantActivity {
  // onChange(activity) runs whenever the activity changes, never twice with the same one.
  constructor(onChange) {
    this.onChange = onChange;
    this.current = 'listening';
  }

  reset() {
    this.set('listening');
  }

  handle(event) {
    switch (event?.type) {
      case 'input_audio_buffer.speech_started':
        return this.set('hearing');
      case 'input_audio_buffer.speech_stopped':
      case 'input_audio_buffer.committed':
        if (this.current === 'hearing') this.set('thinking');
        return;
      case 'response.created':
        if (this.current !== 'speaking') this.set('thinking');
        return;
      case 'output_audio_buffer.started':
        return this.set('speaking');
      case 'output_audio_buffer.stopped':
      case 'output_audio_buffer.cleared':
        if (this.current === 'speaking') this.set('listening');
        return;
      case 'response.done':
        if (this.current === 'thinking') this.set('listening');
        return;
      default:
    }
  }

  set(activity) {
    if (activity === this.current) return;
    this.current = activity;
    this.onChange(activity);
  }
}
