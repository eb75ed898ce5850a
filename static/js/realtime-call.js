// One WebRTC voice call with the OpenAI Realtime API. Token mode: the browser dials OpenAI with an
// ephemeral key from the broker. Relay mode: the broker forwards the SDP offer itself.
import * as api from './api.js';
import { ApiError } from './api.js';

const ICE_GATHERING_CAP_MS = 2000;

// Resolves with {close()} once the answer is applied. onEvent gets each data-channel event,
// onRemoteStream the assistant's audio, onFailed a connection that broke after the start.
export async function startCall(microphone, { onEvent, onRemoteStream, onFailed }) {
  const pc = new RTCPeerConnection();
  try {
    pc.addEventListener('track', event => onRemoteStream(event.streams[0] ?? new MediaStream([event.track])));
    pc.addEventListener('connectionstatechange', () => {
      if (pc.connectionState === 'failed') onFailed();
    });
    for (const track of microphone.getAudioTracks()) pc.addTrack(track, microphone);

    const events = pc.createDataChannel('oai-events');
    events.addEventListener('message', message => {
      try {
        onEvent(JSON.parse(message.data));
      } catch {
        console.warn('realtime call: ignoring an event that is not JSON');
      }
    });

    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringComplete(pc);
    const answer = await exchangeOffer(pc.localDescription.sdp);
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  } catch (error) {
    pc.close();
    throw error;
  }
  return { close: () => pc.close() };
}

// Sending every candidate in the offer avoids trickle ICE; a slow network interface must not hold
// the call up, so the wait is capped.
function iceGatheringComplete(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise(resolve => {
    const timer = setTimeout(resolve, ICE_GATHERING_CAP_MS);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState !== 'complete') return;
      clearTimeout(timer);
      resolve();
    });
  });
}

async function exchangeOffer(offerSdp) {
  let key;
  try {
    key = await api.token();
  } catch (error) {
    if (error.code === 'relay_mode') return api.connect(offerSdp);
    throw error;
  }

  let response;
  try {
    response = await fetch(key.callsUrl, {
      method: 'POST',
      body: offerSdp,
      headers: { 'Authorization': `Bearer ${key.value}`, 'Content-Type': 'application/sdp' },
    });
  } catch (cause) {
    throw new ApiError({ code: 'upstream_unreachable', message: cause.message });
  }
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new ApiError({ status: response.status, code: 'upstream_error', message: body?.error?.message ?? '' });
  }
  const answer = await response.text();

  // Location: /v1/realtime/calls/rtc_... names the call; the broker needs it to hang up at the end.
  const location = response.headers.get('Location');
  const callId = location ? new URL(location, key.callsUrl).pathname.split('/').pop() : '';
  if (callId) {
    api.reportCall(callId).catch(error => console.warn('realtime call: could not report the call id', error));
  } else {
    console.warn('realtime call: no Location header; the server cannot hang this call up itself');
  }
  return answer;
}
