/**
 * A stream.Duplex over a stream-type UnixSocket (UnixSocket.toDuplex()): for code that takes a
 * Node stream (pipe(), http's createConnection, tls.connect({ socket }), a Channel's StreamPair).
 *
 * - Writing: each write is a send(), its callback called once the kernel has the bytes, so
 *   Writable's own buffering (highWaterMark) is the backpressure; end() is shutdown(2) after the
 *   queued bytes (the peer reads the end), destroy() closes the socket at once.
 * - Reading: the socket's 'message' listener is attached while the Readable wants data and
 *   detached when push() says its buffer is full, so reading pauses through the kernel. Bytes
 *   that arrived meanwhile wait in the socket's queue and come first on resume; the peer's end
 *   comes after them.
 * - Descriptors that arrive with the bytes are closed: a Duplex carries bytes only.
 */
import { Duplex } from 'node:stream';
import type { UnixSocket } from './socket.js';
import type { UnixMessage } from './types.js';

/** Options of UnixSocket.toDuplex(). */
export interface UnixDuplexOptions {
  /**
   * Keep the writable side open after the peer ends its side (default false, as net.Socket's):
   * with false, the Duplex ends its side too when the peer's end is read.
   */
  allowHalfOpen?: boolean;
}

/** @internal See the module comment. */
export function duplexOf(socket: UnixSocket, options: UnixDuplexOptions = {}): Duplex {
  let reading = false;
  /** The peer's end came while reading was paused: it follows the bytes still queued. */
  let endWaits = false;
  const onMessage = (message: UnixMessage): void => {
    for (const d of message.fds) d.close();
    if (!duplex.push(message.data)) pause();
  };
  const pause = (): void => {
    if (!reading) return;
    reading = false;
    socket.off('message', onMessage);
  };
  const duplex = new Duplex({
    allowHalfOpen: options.allowHalfOpen ?? false,
    read() {
      if (reading || socket.closed) return;
      reading = true;
      // Adding the listener hands it what the socket read ahead, in a microtask queued now;
      // the end, if it came meanwhile, follows those bytes (unless reading paused again).
      socket.on('message', onMessage);
      if (endWaits) {
        queueMicrotask(() => {
          if (!reading || !endWaits) return;
          endWaits = false;
          duplex.push(null);
        });
      }
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.send(chunk).then(() => callback(), callback);
    },
    writev(chunks, callback) {
      for (let i = 0; i < chunks.length - 1; i++) socket.send(chunks[i]!.chunk as Buffer).catch(() => {}); // the last one's outcome reports theirs
      socket.send(chunks[chunks.length - 1]!.chunk as Buffer).then(() => callback(), callback);
    },
    final(callback) {
      socket.end().then(() => callback(), callback);
    },
    destroy(error, callback) {
      pause();
      socket.destroy();
      callback(error);
    },
  });
  socket.on('end', () => {
    if (reading) duplex.push(null);
    else endWaits = true;
  });
  socket.on('error', (error) => duplex.destroy(error));
  socket.on('close', () => {
    if (!duplex.destroyed) duplex.destroy();
  });
  return duplex;
}
