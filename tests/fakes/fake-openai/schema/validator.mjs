// Checks Realtime events against the excerpt of OpenAI's OpenAPI spec in realtime-ga.json.
//
// The spec is followed as published, with two mechanical steps and a short list of overlays:
// - "discriminator" is dropped: it is an annotation for code generators, and Ajv only accepts it
//   next to oneOf (the spec puts it next to anyOf);
// - the OpenAPI 3.0 keyword `nullable: true` (still used in places) becomes its meaning in JSON
//   Schema, `anyOf: [<the schema>, {type: "null"}]`;
// - formats ("unixtime", "uri") are not checked;
// - OVERLAYS widens a few fields to also accept null, because the live API sends null there and the
//   spec's own examples show it (each entry names its evidence). Nothing else is loosened.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export const OVERLAYS = [
  {
    schema: 'AudioTranscriptionResponse',
    path: ['properties', 'language'],
    why: 'session.updated recorded from the live API (pydantic/pydantic-ai tests/realtime/cassettes/test_openai_ws_sideband/*.yaml) has "language": null',
  },
  {
    schema: 'AudioTranscriptionResponse',
    path: ['properties', 'prompt'],
    why: 'same recording: "prompt": null',
  },
  {
    schema: 'RealtimeSessionCreateResponseGA',
    path: ['properties', 'audio', 'properties', 'input', 'properties', 'noise_reduction'],
    why: 'the spec\'s own session.created/session.updated examples and the live API send "noise_reduction": null',
  },
  {
    schema: 'RealtimeSessionCreateResponseGA',
    path: ['properties', 'include'],
    why: 'the spec\'s own session.created/session.updated examples and the live API send "include": null',
  },
  {
    schema: 'RealtimeSessionCreateResponseGA',
    path: ['properties', 'audio', 'properties', 'input', 'properties', 'transcription'],
    why: 'the spec\'s own session.created/session.updated examples and the live API send "transcription": null when input transcription is off',
  },
  {
    schema: 'RealtimeResponse',
    path: ['properties', 'status_details'],
    why: 'the spec\'s own response.created/response.done examples and the live API send "status_details": null',
  },
  {
    schema: 'RealtimeResponse',
    path: ['properties', 'usage'],
    why: 'the spec\'s own response.created example and the live API send "usage": null until response.done',
  },
  {
    schema: 'RealtimeConversationItemMessageUser',
    path: ['properties', 'content', 'items', 'properties', 'transcript'],
    why: 'the live API sends {"type":"input_audio","transcript":null} in conversation.item.added/done for a spoken user turn (live capture, 2026-09-18)',
  },
];

function translate(node) {
  if (Array.isArray(node)) return node.map(translate);
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) if (k !== 'discriminator' && k !== 'nullable') out[k] = translate(v);
  return node.nullable === true ? { anyOf: [out, { type: 'null' }] } : out;
}

export function loadSchemas() {
  const doc = JSON.parse(fs.readFileSync(path.join(HERE, 'realtime-ga.json'), 'utf8'));
  const schemas = translate(structuredClone(doc.components.schemas));
  for (const o of OVERLAYS) {
    let parent = schemas[o.schema];
    for (const p of o.path.slice(0, -1)) parent = parent?.[p];
    const last = o.path.at(-1);
    if (!parent || !(last in parent)) throw new Error(`overlay target missing: ${o.schema}/${o.path.join('/')}`);
    parent[last] = { anyOf: [parent[last], { type: 'null' }] };
  }
  return { doc, schemas };
}

/** Returns fn(event) -> null when the event matches its schema, else a list of problems. */
export function eventValidator() {
  const { schemas } = loadSchemas();
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema({ $id: 'realtime-ga', components: { schemas } });
  const byType = new Map();
  for (const [name, s] of Object.entries(schemas)) {
    if (!/^Realtime(Server|Client)Event/.test(name)) continue;
    const t = s.properties?.type?.enum;
    if (Array.isArray(t) && t.length === 1) {
      byType.set(`${name.startsWith('RealtimeServer') ? 'server' : 'client'}:${t[0]}`, ajv.getSchema(`realtime-ga#/components/schemas/${name}`));
    }
  }
  return (event, side = 'server') => {
    const v = byType.get(`${side}:${event?.type}`);
    if (!v) return [`no ${side} event schema for type ${JSON.stringify(event?.type)} in realtime-ga.json`];
    return v(event) ? null : v.errors.map((e) => `${e.instancePath || '/'} ${e.message} (${e.schemaPath})`);
  };
}
