/**
 * Codecs turn messages into frame payloads and back. The channel adds nothing else to the wire,
 * so what a codec produces is exactly what a peer in another language must read.
 */
import v8 from 'node:v8';
import { InterprocessError, invalidType } from '../errors.js';
import { readText } from './frame.js';

/** Turns messages of type T into bytes and back. `decode` throws on a malformed payload. */
export interface Codec<T> {
  /** A message to the bytes of its frame payload. */
  encode(message: T): Uint8Array;
  /** A frame payload back to a message; throws if it is malformed. */
  decode(payload: Buffer): T;
}

/** Bytes as they are: a Buffer, TypedArray or DataView out, a Buffer in. */
export const rawCodec: Codec<Buffer> = {
  encode(message: NodeJS.ArrayBufferView) {
    if (!ArrayBuffer.isView(message)) throw invalidType('message', 'a Buffer, TypedArray or DataView (raw codec)', message);
    return message instanceof Uint8Array ? message : new Uint8Array(message.buffer, message.byteOffset, message.byteLength);
  },
  decode: (payload) => payload,
};

/**
 * JSON text of a message; throws ERR_INVALID_ARG_TYPE (naming `argument`) for a value JSON has no
 * text for, and ERR_INVALID_ARG_VALUE for one JSON.stringify fails on (a cycle, a BigInt, nesting
 * deeper than its recursion reaches, a toJSON that throws).
 */
function jsonText(message: unknown, argument = 'message'): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(message);
  } catch (error) {
    throw new InterprocessError(
      'ERR_INVALID_ARG_VALUE',
      `The argument '${argument}' has no JSON text (json codec): ${(error as Error)?.message ?? error}. JSON has no cycles and no BigInt, and JSON.stringify follows a few thousand levels of nesting at most; the v8 codec takes cycles and BigInts.`,
      { cause: error },
    );
  }
  if (text === undefined) throw invalidType(argument, 'a JSON-serialisable value (json codec)', message);
  return text;
}

/** UTF-8 JSON text: what a peer in any language reads. */
export const jsonCodec: Codec<unknown> = {
  encode: (message) => Buffer.from(jsonText(message)),
  decode: (payload) => JSON.parse(payload.toString('utf8')),
};

/**
 * A frame body for a message: with the json codec its text, which the frame writer encodes
 * straight into the batch (no Buffer of its own); with any other codec its bytes.
 */
export function encodeBody<T>(codec: Codec<T>, message: T, argument?: string): string | Uint8Array {
  return codec === (jsonCodec as Codec<unknown>) ? jsonText(message, argument) : codec.encode(message);
}

/** The message in payload buffer[start, end): json parsed straight from the bytes, with no view made first. */
export function decodeSpan<T>(codec: Codec<T>, buffer: Buffer, start: number, end: number): T {
  return codec === (jsonCodec as Codec<unknown>) ? (JSON.parse(readText(buffer, start, end)) as T) : codec.decode(buffer.subarray(start, end));
}

/** Node's structured clone (`v8.serialize`): Maps, Sets, Dates, typed arrays, cycles; Node peers only. */
export const v8Codec: Codec<unknown> = {
  encode: (message) => v8.serialize(message),
  decode: (payload) => v8.deserialize(payload),
};

/** The codecs by name. */
export const codecs: {
  /** {@link rawCodec} */
  readonly raw: Codec<Buffer>;
  /** {@link jsonCodec} */
  readonly json: Codec<unknown>;
  /** {@link v8Codec} */
  readonly v8: Codec<unknown>;
} = { raw: rawCodec, json: jsonCodec, v8: v8Codec };

/** The built-in codecs' names: 'raw', 'json', 'v8'. */
export type CodecName = keyof typeof codecs;

export function toCodec<T>(codec: CodecName | Codec<T> | undefined, fallback: CodecName): Codec<T> {
  const chosen = codec ?? fallback;
  if (typeof chosen === 'string') {
    if (!(chosen in codecs)) throw invalidType('options.codec', `'raw', 'json', 'v8' or an object with encode and decode`, chosen);
    return codecs[chosen] as Codec<T>;
  }
  if (chosen === null || typeof chosen !== 'object' || typeof chosen.encode !== 'function' || typeof chosen.decode !== 'function') {
    throw invalidType('options.codec', "'raw', 'json', 'v8' or an object with encode and decode", chosen);
  }
  return chosen;
}
