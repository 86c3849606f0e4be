/**
 * The pipe ends' transport under Bun. Bun's net.Socket does not work over a pipe or FIFO
 * descriptor (Bun 1.4: `new net.Socket({ fd })` reports fd -1 and never reads), while its fs
 * streams do. So under Bun each end stays a net.Socket (the same class, events and stream API) but
 * moves its bytes through an fs ReadStream or WriteStream over its descriptor. The fs stream is
 * made on the first read or write, so an end handed to a child has read nothing ahead. Under Node
 * and Deno, net.Socket owns the descriptor itself (libuv's pipe stream) and none of this is used.
 */
import fs from 'node:fs';
import type net from 'node:net';
import { closeFdQuietly } from '../native/fds.js';

/** Where `onChunk` reads go: one reused buffer and the user's callback (see ReceiverOptions). */
export interface ChunkSink {
  readonly buffer: Buffer;
  /** Hands over `nread` bytes at the start of `buffer`; false: stop reading until resume(). */
  callback(nread: number): boolean;
}

/** What an end asks of its fs transport. */
export interface FsTransport {
  /** Bytes read ahead or queued inside the fs stream, which the socket's own counts miss. */
  buffered(): number;
  /** onChunk mode: stop reading (pause()) and go on (resume()). */
  pause(): void;
  resume(): void;
}

type Callback = (error?: Error | null) => void;
/** The stream hooks of net.Socket that the transport replaces on the instance. */
interface Hooks {
  _read(size: number): void;
  _write(chunk: Buffer, encoding: BufferEncoding, callback: Callback): void;
  _writev(chunks: Array<{ chunk: Buffer }>, callback: Callback): void;
  _final(callback: Callback): void;
  _destroy(error: Error | null, callback: Callback): void;
}

/** Closes the fs stream (which closes the descriptor once its pending operation is done) or the bare descriptor. */
function closeThen(stream: fs.ReadStream | fs.WriteStream | undefined, fd: number, done: () => void): void {
  if (!stream) {
    closeFdQuietly(fd);
    done();
    return;
  }
  if (stream.closed) {
    done();
    return;
  }
  (stream as NodeJS.EventEmitter).once('close', done);
  stream.destroy();
}

/** Makes `socket` a receiver reading `fd` through an fs ReadStream (into `sink` if given). */
export function readThroughFs(socket: net.Socket, fd: number, sink: ChunkSink | undefined): FsTransport {
  let stream: fs.ReadStream | undefined;
  let pending: Buffer | null = null;
  let paused = false;
  // onChunk mode: copy into the user's buffer, one buffer-full per callback; keep the rest on false.
  const deliver = (chunk: Buffer): boolean => {
    const { buffer } = sink!;
    let offset = 0;
    while (offset < chunk.length) {
      const n = chunk.copy(buffer, 0, offset, offset + buffer.length);
      offset += n;
      if (!sink!.callback(n) || socket.destroyed) {
        pending = offset < chunk.length ? chunk.subarray(offset) : null;
        return false;
      }
    }
    return true;
  };
  const open = (): fs.ReadStream => {
    if (stream) return stream;
    const made = fs.createReadStream('', { fd, autoClose: true, highWaterMark: 64 * 1024 });
    stream = made;
    made.on('data', (chunk) => {
      const bytes = chunk as Buffer;
      if (sink) {
        if (!deliver(bytes)) {
          paused = true;
          made.pause();
        }
      } else if (!socket.push(bytes)) {
        made.pause();
      }
    });
    made.on('end', () => {
      socket.push(null);
      if (sink) socket.read(0); // nothing is buffered: this emits 'end'
    });
    made.on('error', (error) => socket.destroy(error));
    return made;
  };
  const hooks: Partial<Hooks> = {
    _read: () => {
      if (!paused) open().resume();
    },
    _destroy: (error, callback) => closeThen(stream, fd, () => callback(error)),
  };
  Object.assign(socket, hooks);
  // Node's net.Socket ends a read-only socket once it has ended (autoDestroy); Bun's does not.
  socket.once('end', () => socket.destroy());
  const transport: FsTransport = {
    buffered: () => (stream?.readableLength ?? 0) + (pending?.length ?? 0),
    pause: () => {
      paused = true;
      stream?.pause();
    },
    resume: () => {
      paused = false;
      if (pending) {
        const rest = pending;
        pending = null;
        if (!deliver(rest)) {
          paused = true;
          return;
        }
      }
      open().resume();
    },
  };
  if (sink) transport.resume(); // onChunk: reading starts at once
  return transport;
}

/** Makes `socket` a sender writing `fd` through an fs WriteStream. */
export function writeThroughFs(socket: net.Socket, fd: number): FsTransport {
  let stream: fs.WriteStream | undefined;
  const open = (): fs.WriteStream => {
    if (stream) return stream;
    stream = fs.createWriteStream('', { fd, autoClose: true });
    stream.on('error', (error) => socket.destroy(error));
    return stream;
  };
  const write = (chunk: Buffer, callback: Callback) => {
    open().write(chunk, (error) => callback(error ?? null));
  };
  const hooks: Partial<Hooks> = {
    _write: (chunk, _encoding, callback) => write(chunk, callback),
    _writev: (chunks, callback) => write(Buffer.concat(chunks.map(({ chunk }) => chunk)), callback),
    _final: (callback) => (stream ? stream.end(() => callback()) : callback()),
    _destroy: (error, callback) => closeThen(stream, fd, () => callback(error)),
  };
  Object.assign(socket, hooks);
  // Node's net.Socket closes a write-only socket once its writes are done; Bun's does not.
  socket.once('finish', () => socket.destroy());
  return { buffered: () => stream?.writableLength ?? 0, pause() {}, resume() {} };
}
