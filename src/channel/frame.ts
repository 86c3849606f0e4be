/**
 * Framing: each frame is a 4-byte big-endian length followed by that many payload bytes
 * (the same as Python's multiprocessing.connection for frames under 2 GiB). The reader checks a
 * length against the limit before allocating anything for it.
 *
 * FrameWriter (frame-writer.ts) builds the bytes of a batch of frames with as few allocations and
 * copies as it can: small frames (header, envelope and body) are written one after the other into
 * a shared slab, text bodies straight from the string into it; a large body is its own chunk,
 * never copied. FrameReader (frame-reader.ts) splits received chunks into payloads, viewing them
 * in place when a frame lies in one chunk, and ties descriptors that arrived with a chunk to the
 * frame its last byte belongs to. This file holds what both sides share.
 */
import { InterprocessError } from '../errors.js';

export const HEADER_BYTES = 4;
/**
 * The default maxMessageSize of channels (the largest frame payload): 16 MiB, the package's
 * DEFAULT_MAX_MESSAGE_SIZE (exported with MessagePipe's, the same value; a test checks they agree).
 */
export const DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024;
/** Largest frame a 4-byte length can say that Python's signed length also reads: 2 GiB - 1. */
export const MAX_FRAME_LIMIT = 0x7fffffff;

export function frameTooLarge(length: number, max: number, direction: 'send' | 'receive'): InterprocessError {
  const hint = direction === 'send' ? 'Send it in parts, or raise maxMessageSize on both sides.' : 'The peer sent more than this channel accepts (raise maxMessageSize if it is legitimate); the channel is closed.';
  return new InterprocessError('ERR_INTERPROCESS_FRAME_TOO_LARGE', `A frame of ${length} bytes is over the limit of ${max} bytes. ${hint}`);
}

/** The envelope a frame's payload starts with (RpcChannel's kind, id and name; none for Channel). */
export interface Envelope {
  /** Kind byte, or -1 for none. */
  kind: number;
  /** u32 id, or -1 for none. */
  id: number;
  /** u16-length-prefixed UTF-8 name, or null. */
  name: string | null;
}

const utf8Slice = (Buffer.prototype as unknown as { utf8Slice?: (this: Buffer, start: number, end: number) => string }).utf8Slice;
/** The UTF-8 text of buffer[start, end) (utf8Slice, as Buffer#toString calls it after its argument checks). */
export const readText: (buffer: Buffer, start: number, end: number) => string =
  typeof utf8Slice === 'function' ? (buffer, start, end) => utf8Slice.call(buffer, start, end) : (buffer, start, end) => buffer.toString('utf8', start, end);

/**
 * Where a copy of `source` should start in a fresh buffer: at the same address modulo 16. memmove
 * (glibc's, on the AMD EPYC of our CI) copies 64 KiB three times slower when source and
 * destination differ there, and a frame that spans reads starts anywhere in the first (after its
 * header, at least 4 bytes in). Buffers of 4 KiB and more are their own 16-byte aligned
 * allocations, so the offset in the ArrayBuffer gives the address modulo 16.
 */
export function skewOf(source: Uint8Array): number {
  return source.byteOffset & 15;
}
