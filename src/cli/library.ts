/**
 * Every call the command makes into the library, in one place: the rest of src/cli/ sees only
 * the small shapes below (a byte stream, a message end, a datagram end), so a change of the
 * library's signatures is a change of this file alone.
 */
import type { Duplex, Readable, Writable } from 'node:stream';
import { createFifo, openFifoReader, openFifoWriter } from '../fifo/fifo.js';
import { connect } from '../local-socket/connect.js';
import { connectWithRetry } from '../socket-connect.js';
import { listen } from '../local-socket/listener.js';
import { type LocalSocketName, supportedNameKinds } from '../local-socket/name.js';
import { nativeStatus } from '../native/addon.js';
import { connectNamedPipe, listenNamedPipe, type MessagePipe } from '../named-pipe/index.js';
import { isWindows } from '../platform.js';
import { signals } from '../signal/signal.js';
// Through the index: its import order settles the socket/descriptor module cycle.
import { type UnixSocket, bindDatagram, connectUnix, listenUnix } from '../unix-socket/index.js';
import type { Address } from './address.js';

export { nativeStatus, signals, supportedNameKinds };

/** A connection that carries bytes. `noHalfClose`: ending our side closes it (a Windows pipe). */
export interface ByteConnection {
  kind: 'bytes';
  stream: Duplex;
  noHalfClose: boolean;
}

/** A connection that carries messages (seqpacket, message-mode pipe). */
export interface MessageConnection {
  kind: 'messages';
  send(message: Buffer): Promise<void>;
  /** Our last message is sent: a seqpacket socket shuts down its side; a pipe has no half-close (see `halfClose`). */
  end(): Promise<void>;
  /** False where ending our side closes the connection (a message-mode named pipe). */
  halfClose: boolean;
  /** True once the connection is closed. */
  closed(): boolean;
  /** The peer's messages, until it ends. */
  messages(): AsyncIterable<Buffer>;
  close(): Promise<void>;
}

export type Connection = ByteConnection | MessageConnection;

/** An address with a peer at the other end. */
export type ConnectionAddress = Exclude<Address, { kind: 'fifo' | 'datagram' }>;

/** A bound datagram socket: what it receives (null once closed), or what it sends. */
export interface DatagramEnd {
  receive(): Promise<Buffer | null>;
  send(message: Buffer): Promise<void>;
  close(): Promise<void>;
}

export interface ConnectOptions {
  wait: boolean;
  timeout?: number;
}

const socketConnection = (socket: UnixSocket): MessageConnection => ({
  kind: 'messages',
  send: (message) => socket.send(message),
  end: () => socket.end(),
  halfClose: true,
  closed: () => socket.closed,
  messages: async function* () {
    for await (const { data } of socket) yield data;
  },
  close: () => socket.close(),
});

const pipeConnection = (pipe: MessagePipe): MessageConnection => ({
  kind: 'messages',
  send: (message) => pipe.send(message),
  end: async () => {},
  halfClose: false,
  closed: () => pipe.closed,
  messages: () => pipe,
  close: () => pipe.close(),
});

/** The first connection of a listener, which is then closed. */
async function first<T>(listener: { once(event: 'connection', fn: (conn: T) => void): unknown; close(): Promise<void> }): Promise<T> {
  const conn = await new Promise<T>((resolve) => listener.once('connection', resolve));
  await listener.close();
  return conn;
}

/**
 * Listens at a connection address, says so on stderr, takes the first connection and stops
 * listening. `mode`: permissions of a socket file.
 */
export async function acceptOne(address: ConnectionAddress, mode: number | undefined): Promise<Connection> {
  const modeOption = mode === undefined ? {} : { mode };
  if (address.kind === 'seqpacket') {
    const listener = await listenUnix(address.name, { ...modeOption, type: 'seqpacket' });
    process.stderr.write(`listening on ${address.name} (seqpacket)\n`);
    return socketConnection(await first<UnixSocket>(listener));
  }
  if (address.kind === 'named-pipe') {
    if (address.message) {
      const listener = await listenNamedPipe(address.name, { type: 'message' });
      process.stderr.write(`listening on ${listener.name} (message mode)\n`);
      return pipeConnection(await first<MessagePipe>(listener));
    }
    const listener = await listenNamedPipe(address.name);
    process.stderr.write(`listening on ${listener.name}\n`);
    return { kind: 'bytes', stream: await first<Duplex>(listener), noHalfClose: true };
  }
  const listener = await listen(address.name, { ...modeOption, allowHalfOpen: true });
  process.stderr.write(`listening on ${address.name}\n`);
  // Local sockets are named pipes on Windows.
  return { kind: 'bytes', stream: await first<Duplex>(listener), noHalfClose: isWindows };
}

/** Connects to a connection address. */
export async function connectTo(address: ConnectionAddress, options: ConnectOptions): Promise<Connection> {
  const retry = { wait: options.wait, ...(options.timeout === undefined ? {} : { timeout: options.timeout }) };
  if (address.kind === 'seqpacket') return socketConnection(await connectUnix(address.name, { ...retry, type: 'seqpacket' }));
  if (address.kind === 'named-pipe') {
    if (address.message) return pipeConnection(await connectNamedPipe(address.name, { ...retry, type: 'message' }));
    return { kind: 'bytes', stream: await connectNamedPipe(address.name, retry), noHalfClose: true };
  }
  return { kind: 'bytes', stream: await connect(address.name, { ...retry, allowHalfOpen: true }), noHalfClose: isWindows };
}

/** Creates the FIFO if missing (`mode` then, default 600) and opens it for reading. */
export async function fifoReader(path: string, mode: number | undefined): Promise<Readable> {
  await createFifo(path, { mode: mode ?? 0o600, reuse: true });
  return openFifoReader(path);
}

/** Opens a FIFO for writing. */
export function fifoWriter(path: string, options: ConnectOptions): Promise<Writable> {
  return openFifoWriter(path, { wait: options.wait, ...(options.timeout === undefined ? {} : { timeout: options.timeout }) });
}

function datagramEnd(socket: UnixSocket): DatagramEnd {
  return {
    receive: async () => (await socket.receive())?.data ?? null,
    send: (message) => socket.send(message),
    close: () => socket.close(),
  };
}

/** A datagram socket bound to `name` (its socket file removed on close). */
export async function bindReceiver(name: LocalSocketName, mode: number | undefined): Promise<DatagramEnd> {
  return datagramEnd(await bindDatagram(name, mode === undefined ? {} : { mode }));
}

/** An unbound datagram socket connected to `name`: it sends there and receives nothing. */
export async function bindSender(name: LocalSocketName, options: ConnectOptions): Promise<DatagramEnd> {
  const retry = { wait: options.wait, ...(options.timeout === undefined ? {} : { timeout: options.timeout }) };
  return datagramEnd(await connectWithRetry(name, retry, () => bindDatagram(null, { connect: name })));
}
