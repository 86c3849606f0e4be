/**
 * How messages (datagrams, seqpacket messages, message-mode pipe messages) meet a byte stream
 * (stdin, stdout). `line`, the default: one message per line, escaped so that any bytes survive
 * the round trip; `raw`: the bytes alone, no separator (one message per read of stdin).
 *
 * The line escape: a message is written as its bytes followed by a newline, where
 *   \  is written \\        newline is written \n        carriage return is written \r
 *   every other control byte (below 0x20 but tab, 0x7f, and the C1 controls U+0080..U+009F, as
 *   their UTF-8 bytes) and every byte that is not part of valid UTF-8 is written \xHH
 * so valid UTF-8 text reads as itself, a line never holds a raw newline, and a terminal is never
 * sent a control sequence. Reading lines undoes it: \\ \n \r \t \xHH are decoded, any other
 * backslash is kept as it is; a trailing carriage return (a CRLF line end) is dropped.
 */
import { outOfRange } from '../errors.js';

export type Framing = 'line' | 'raw';
export const FRAMINGS: readonly Framing[] = ['line', 'raw'];

const BACKSLASH = 0x5c;
const hex = (byte: number) => byte.toString(16).padStart(2, '0');

/** The length of the valid UTF-8 sequence at `at`, or 0 if the byte there does not start one. */
function utf8Length(bytes: Buffer, at: number): number {
  const lead = bytes[at]!;
  if (lead < 0x80) return 1;
  let length: number;
  let min: number;
  let max = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) [length, min] = [2, 0x80];
  else if (lead >= 0xe0 && lead <= 0xef) [length, min, max] = [3, lead === 0xe0 ? 0xa0 : 0x80, lead === 0xed ? 0x9f : 0xbf];
  else if (lead >= 0xf0 && lead <= 0xf4) [length, min, max] = [4, lead === 0xf0 ? 0x90 : 0x80, lead === 0xf4 ? 0x8f : 0xbf];
  else return 0;
  if (at + length > bytes.length) return 0;
  // The second byte's range excludes overlong forms, surrogates and code points past U+10FFFF.
  if (bytes[at + 1]! < min || bytes[at + 1]! > max) return 0;
  for (let i = 2; i < length; i++) if (bytes[at + i]! < 0x80 || bytes[at + i]! > 0xbf) return 0;
  return length;
}

/** A message as one line (its newline included). */
export function encodeLine(message: Buffer): Buffer {
  const out: Array<string | Buffer> = [];
  let start = 0; // the first byte not yet copied
  const escape = (at: number, text: string) => {
    if (start < at) out.push(message.subarray(start, at));
    out.push(text);
  };
  for (let at = 0; at < message.length; ) {
    const byte = message[at]!;
    const length = utf8Length(message, at);
    if (length === 0) escape(at, `\\x${hex(byte)}`);
    else if (byte === BACKSLASH) escape(at, '\\\\');
    else if (byte === 0x0a) escape(at, '\\n');
    else if (byte === 0x0d) escape(at, '\\r');
    else if ((byte < 0x20 && byte !== 0x09) || byte === 0x7f) escape(at, `\\x${hex(byte)}`);
    else if (byte === 0xc2 && message[at + 1]! < 0xa0) escape(at, `\\xc2\\x${hex(message[at + 1]!)}`);
    else {
      at += length;
      continue;
    }
    at += length || 1;
    start = at;
  }
  if (start < message.length) out.push(message.subarray(start));
  out.push('\n');
  return Buffer.concat(out.map((part) => (typeof part === 'string' ? Buffer.from(part, 'latin1') : part)));
}

const SIMPLE: Record<number, number> = { [BACKSLASH]: BACKSLASH, 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09 }; // \\ \n \r \t

/** One line (without its newline) back to the message it stands for. */
export function decodeLine(line: Buffer): Buffer {
  if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, -1);
  if (!line.includes(BACKSLASH)) return line;
  const out = Buffer.allocUnsafe(line.length);
  let length = 0;
  for (let at = 0; at < line.length; at++) {
    const byte = line[at]!;
    const next = line[at + 1];
    if (byte === BACKSLASH && next !== undefined && SIMPLE[next] !== undefined) {
      out[length++] = SIMPLE[next]!;
      at++;
    } else if (byte === BACKSLASH && next === 0x78 && /^[0-9a-f]{2}$/i.test(line.toString('latin1', at + 2, at + 4))) {
      out[length++] = Number.parseInt(line.toString('latin1', at + 2, at + 4), 16);
      at += 3;
    } else {
      out[length++] = byte;
    }
  }
  return out.subarray(0, length);
}

/**
 * The longest line read as one message: past it the input is not lines (use --framing raw).
 * Larger than any datagram a default Linux socket sends (about 208 KiB).
 */
export const LINE_MAX = 256 * 1024;

/** A byte stream as messages, one per line (decoded); a last line without its newline counts. */
export async function* lines(input: AsyncIterable<Buffer> | Iterable<Buffer>, max = LINE_MAX): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingLength = 0;
  for await (const chunk of input) {
    let start = 0;
    for (let newline = chunk.indexOf(0x0a); newline !== -1; newline = chunk.indexOf(0x0a, start)) {
      const tail = chunk.subarray(start, newline);
      const line = pending.length === 0 ? tail : Buffer.concat([...pending, tail]);
      if (line.length > max) throw tooLong(max);
      pending = [];
      pendingLength = 0;
      yield decodeLine(line);
      start = newline + 1;
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start));
      pendingLength += chunk.length - start;
      if (pendingLength > max) throw tooLong(max);
    }
  }
  if (pendingLength > 0) yield decodeLine(Buffer.concat(pending));
}

function tooLong(max: number) {
  return outOfRange('stdin line', `at most ${max} bytes with --framing line (one message per line); for input that is not lines, use --framing raw`, 'a longer line');
}

/** A byte stream as messages, one per read, each cut to `max` bytes. */
export async function* reads(input: AsyncIterable<Buffer>, max: number): AsyncGenerator<Buffer> {
  for await (const chunk of input) {
    for (let at = 0; at < chunk.length; at += max) yield chunk.subarray(at, at + max);
  }
}
