/**
 * Loads the native core: a prebuilt binary for this platform first, a local build second
 * (node-gyp-build). The addon is optional at run time: if it cannot load, everything Node core
 * can do still works, and each native-only call throws ERR_INTERPROCESS_NATIVE saying why.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { InterprocessError, nativeError } from '../errors.js';
import type { DescriptorKind } from '../unix-socket/descriptors.js';

/** Readiness watcher over a descriptor (uv_poll on Node's own loop). */
export interface NativeWatcher {
  start(events: number): void;
  stop(): void;
  close(): void;
  ref(keepAlive: boolean): void;
}

/** What a descriptor is (fstat), for turning received descriptors into objects. */
export interface NativeDescription {
  kind: DescriptorKind;
  /** 1 datagram, 2 seqpacket, 3 stream; 0 for non-sockets. */
  socketType: number;
  listening: boolean;
  /** A Unix domain socket (AF_UNIX). */
  unix: boolean;
}

/**
 * Unix domain sockets of every type (native/unix/usocket.c; messages: message.c, send.c, receive.c).
 * Types are 1 datagram, 2 seqpacket, 3 stream; addresses are Buffers of sun_path bytes (a leading NUL: abstract).
 */
export interface NativeUnixSockets {
  open(type: number): number;
  pair(type: number): [number, number];
  /** null: autobind (Linux). */
  bind(fd: number, address: Buffer | null): void;
  /** true when connected; false while the OS is still connecting (then wait for WRITABLE and takeError). */
  connect(fd: number, address: Buffer): boolean;
  takeError(fd: number): void;
  listen(fd: number, backlog: number): void;
  accept(fd: number, max: number): number[];
  shutdown(fd: number): void;
  address(fd: number, peer: boolean): Buffer;
  setPassCredentials(fd: number, on: boolean): void;
  /** Linux: SO_TIMESTAMP on, which marks every real seqpacket message (receive's MARKS.STAMP). */
  stampMessages(fd: number): void;
  describe(fd: number): NativeDescription;
  /** Makes a descriptor we were handed non-blocking and close-on-exec. */
  adopt(fd: number): void;
  /** Sends datas[head .. head+count); returns how many went (0: would block). See send.c. */
  send(fd: number, type: number, datas: Uint8Array[], head: number, count: number, addresses: Array<Buffer | null> | null, fdLists: Array<Int32Array | null> | null, progress: Int32Array, packed: Buffer | undefined, spans: Int32Array | undefined, credLists: Array<Int32Array | null> | null): number;
  /**
   * Receives what waits into `pool` from `poolOffset` (returning pool), or into a new Buffer from 0
   * if it does not fit (returning that); undefined when nothing waits. See receive.c for meta.
   */
  receive(fd: number, type: number, meta: Int32Array, fds: Int32Array, maxFds: number, pool: Buffer, poolOffset: number, mark: number): Buffer | undefined;
  readonly RECEIVE_BATCH: number;
  readonly SEND_BATCH: number;
  readonly META_HEADER: number;
  readonly META_STRIDE: number;
  readonly MAX_FDS: number;
  /** The receive's `mark` values (native/unix/receive-mark.h; src/unix-socket/marks.ts spells them too). */
  readonly MARKS: { readonly USER_ON: number; readonly OFF: number; readonly UNKNOWN: number; readonly ON: number; readonly STAMP: number };
}

/** What the OS reports of a named pipe (-1: unknown). See native/windows/pipe.c. */
export interface NativePipeInfo {
  clientProcessId: number;
  serverProcessId: number;
  clientSessionId: number;
  serverSessionId: number;
  flags?: number;
  outBufferSize?: number;
  inBufferSize?: number;
  maxInstances?: number;
}

/** One named-pipe handle of ours (Windows): overlapped, completions on the JS thread. */
export interface NativeNamedPipe {
  /** Server instance: waits for a client (a client that came and went is skipped). */
  connect(callback: (error: Error | null) => void): void;
  /**
   * One whole message (message mode): returned if it was waiting whole (the callback is then never
   * called), else the callback gives it; null at the end of the stream.
   */
  read(maxMessageSize: number, callback: (error: (Error & { size?: number }) | null, message: Buffer | null) => void): Buffer | undefined;
  /** The whole buffer in one WriteFile: true if taken at once (the callback is then never called). */
  write(data: Buffer, callback: (error: (Error & { code?: string; bytesWritten?: number }) | null) => void): boolean;
  /** [bytes available, bytes left in the next message]. */
  peek(): [number, number];
  info(): NativePipeInfo;
  /** The pipe's DACL as SDDL. */
  securityDescriptor(): string;
  /** Hands the handle to a descriptor of node.exe's C runtime (for net.Socket); this object is then closed. */
  toFd(): number;
  /** The handle's value, while this object owns it. */
  handle(): number;
  /** Cancels reads and accepts; writes in flight finish first unless `destroy`; then closes the handle. */
  close(destroy?: boolean): void;
  ref(keepAlive: boolean): void;
}

/** Windows named pipes (native/windows/, npipe.h). */
export interface NativeNamedPipes {
  create(name: string, openMode: number, pipeMode: number, maxInstances: number, outBufferSize: number, inBufferSize: number, sddl: string | null, inheritable: boolean): NativeNamedPipe;
  open(name: string, access: number, messageMode: boolean, writeThrough?: boolean, impersonable?: boolean): NativeNamedPipe;
  wait(name: string, timeoutMs: number, callback: (error: Error | null) => void): void;
  /** An unnamed pipe [readFd, writeFd] of node.exe's runtime. */
  pair(bufferSize: number): [number, number];
  /** A blocking read or write on a pipe descriptor: bytes moved, 0 at the end (read), -1 on timeout. */
  syncIo(fd: number, buffer: Buffer, write: boolean, timeoutMs: number): number;
  /** A descriptor for a duplicate of fd's handle. */
  dupFd(fd: number): number;
  /** What fd's handle is (GetFileType); EBADF if fd is not open. */
  fdType(fd: number): 'pipe' | 'file' | 'char' | 'unknown';
  /** How many handles this process has open. */
  handleCount(): number;
  /** The handle behind a descriptor of node.exe's runtime (native/windows/handle.c, as the rest below). */
  fdHandle(fd: number): number;
  /** GetFileType, the FILE_MODE_INFORMATION flags, the granted access, GetNamedPipeInfo's flags (-1: unknown). */
  describe(handle: number): { fileType: number; mode: number; access: number; flags: number };
  /** A NamedPipe owning `handle` (message read mode set first if asked). */
  adopt(handle: number, messageReadMode: boolean): NativeNamedPipe;
  /** A new handle of this process to the same object. */
  duplicate(handle: number): number;
  closeHandle(handle: number): void;
  /** The handle's value in process `pid`: a duplicate made there. */
  share(handle: number, pid: number): number;
  /** fn() while this thread impersonates the pipe's client; reverted after, also on a throw. */
  impersonate<T>(handle: number, fn: () => T): T;
  /** This thread's token's user (null: it impersonates no one) or this process's. */
  tokenUser(thread: boolean): { sid: string; admin: boolean } | null;
  /** The user of a server end's client. */
  clientUser(handle: number): { sid: string; admin: boolean };
  readonly constants: Readonly<Record<
    | 'PIPE_ACCESS_DUPLEX' | 'PIPE_ACCESS_INBOUND' | 'PIPE_ACCESS_OUTBOUND' | 'FILE_FLAG_FIRST_PIPE_INSTANCE' | 'WRITE_DAC'
    | 'PIPE_TYPE_BYTE' | 'PIPE_TYPE_MESSAGE' | 'PIPE_READMODE_BYTE' | 'PIPE_READMODE_MESSAGE' | 'PIPE_REJECT_REMOTE_CLIENTS'
    | 'PIPE_UNLIMITED_INSTANCES' | 'GENERIC_READ' | 'GENERIC_WRITE' | 'FILE_READ_ATTRIBUTES' | 'FILE_WRITE_ATTRIBUTES'
    | 'FILE_FLAG_WRITE_THROUGH' | 'PIPE_SERVER_END' | 'FILE_TYPE_PIPE' | 'FILE_READ_DATA' | 'FILE_WRITE_DATA'
    | 'FILE_WRITE_THROUGH' | 'FILE_SYNCHRONOUS_IO_ALERT' | 'FILE_SYNCHRONOUS_IO_NONALERT', number>>;
}

/**
 * What the native addon exports. Every function checks its arguments (ERR_INVALID_ARG_TYPE,
 * ERR_OUT_OF_RANGE, ERR_MISSING_ARGS) and throws a system error on failure, each an
 * InterprocessError once the loader has set the error factory.
 */
/** Warm blocks for large received messages (native/common/slab.c). */
export interface NativeSlabs {
  /** An ArrayBuffer of `size` bytes (at most 32 MiB) over a warm block; undefined where external buffers are refused. */
  take(size: number): ArrayBuffer | undefined;
  /** [blocks, bytes] kept idle now. */
  idle(): [number, number];
}

export interface NativeBinding {
  readonly slabs: NativeSlabs;
  readonly napiVersion: number;
  /** Registers the maker of every error the addon throws; only the first call sets it (returns true). */
  setErrorFactory(factory: (code: string, message: string, errno: number | undefined, syscall: string | undefined) => Error): boolean;
  /** With `ownsFd`, the watcher closes the descriptor once polling stops for good (close, teardown, collection). */
  readonly Watcher: new (fd: number, callback: (status: number, events: number) => void, ownsFd?: boolean) => NativeWatcher;
  /** ERROR is reported, never asked for: the descriptor polled POLLERR and polling stopped (start again to go on). */
  readonly pollEvents: { readonly READABLE: number; readonly WRITABLE: number; readonly DISCONNECT: number; readonly ERROR: number };
  peerCredentials(fd: number): { pid: number; uid: number; gid: number };
  /** The peer's supplementary groups (Linux SO_PEERGROUPS, LOCAL_PEERCRED); null where the OS does not tell them. */
  peerGroups(fd: number): number[] | null;
  tryLock(fd: number): boolean;
  /** Linux: a listening socket bound to the abstract address ("\0name") with its exact length. */
  abstractListen(address: Buffer, backlog: number): number;
  /** Linux: a socket connected to the abstract address ("\0name") with its exact length. */
  abstractConnect(address: Buffer): number;
  /** A pipe pair [read, write], both close-on-exec and non-blocking. */
  pipe(): number[];
  /** Sets (if given) and returns a pipe's buffer size; -1 where the OS has no such control. */
  pipeSize(fd: number, size?: number): number;
  mkfifo(path: string, mode: number): void;
  /** Opens a FIFO (any path, really) non-blocking and close-on-exec, into the registry (see releaseFd). */
  openFifo(path: string, forWriting: boolean): number;
  /**
   * Unix: descriptors the addon creates or receives are in a registry of unclaimed ones, closed
   * when the environment is torn down (see src/native/fds.ts). An owner takes one out; returns
   * whether it was in.
   */
  releaseFd(fd: number): boolean;
  /** Unix: puts a descriptor back into the registry (an owner that was to take it failed to). */
  holdFd(fd: number): void;
  /** Unix: takes a descriptor out of the registry and closes it, in one step. */
  closeFd(fd: number): void;
  setCloexec(fd: number, on: boolean): void;
  setNonblocking(fd: number, on: boolean): void;
  /** A close-on-exec duplicate of fd, in the registry (see releaseFd). */
  dupCloexec(fd: number): number;
  /** Blocks until fd is readable (or writable), or the timeout passes (-1: none); false on timeout. */
  waitFd(fd: number, writable: boolean, timeoutMs: number): boolean;
  /** Unix only. */
  readonly unixSockets: NativeUnixSockets;
  /** Windows only. */
  readonly namedPipe: NativeNamedPipes;
}

/** Whether the addon loaded, and if not, why. */
export interface NativeStatus {
  /** True when the addon loaded in this thread. */
  readonly loaded: boolean;
  /** Why it did not load (absent when it did). */
  readonly reason?: string;
}

const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

function load(): { binding?: NativeBinding; reason?: string } {
  if (process.env.INTERPROCESS_NATIVE === '0') {
    return { reason: 'it was disabled by the environment variable INTERPROCESS_NATIVE=0' };
  }
  try {
    const require = createRequire(import.meta.url);
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => NativeBinding;
    // Tests only (scripts/sanitize.sh): an absolute path to another build of the addon.
    const override = process.env.INTERPROCESS_ADDON_PATH;
    const binding = override ? (require(override) as NativeBinding) : nodeGypBuild(packageRoot);
    // From here on, every error the addon makes is an InterprocessError (a build older than the
    // factory makes plain errors with the same code, errno and syscall).
    if (typeof binding.setErrorFactory === 'function') binding.setErrorFactory(nativeError);
    return { binding: typeof process.versions.bun === 'string' ? withoutUvPoll(binding) : binding };
  } catch (error) {
    return { reason: (error as Error)?.message ?? String(error) };
  }
}

/**
 * Bun (1.4) implements Node-API but not libuv's uv_poll: the Watcher's uv_poll_init aborts the
 * whole process there (oven-sh/bun#18546). So under Bun the Watcher refuses, typed, before any
 * libuv call; everything else of the addon works (pipes, FIFOs, peer credentials, signals).
 */
function withoutUvPoll(binding: NativeBinding): NativeBinding {
  const Watcher = function Watcher(): never {
    throw new InterprocessError(
      'ERR_INTERPROCESS_UNSUPPORTED',
      `Unix sockets of interprocess (UnixSocket: unixSocketPair, connectUnix, listenUnix, bindDatagram, and what runs over them) are not supported under Bun ${process.versions.bun}: ` +
        'they wait for readiness with libuv\'s uv_poll, which Bun does not implement (calling it would abort the process; oven-sh/bun#18546). ' +
        'Use listen()/connect() (local sockets), pipe() or FIFOs there, or run under Node or Deno.',
    );
  } as unknown as NativeBinding['Watcher'];
  return { ...binding, Watcher };
}

const loaded = load();

/** Reports whether the native addon is loaded in this thread. */
export function nativeStatus(): NativeStatus {
  return loaded.binding ? { loaded: true } : { loaded: false, reason: loaded.reason ?? 'unknown' };
}

/** The addon, or null when it did not load. */
export function optionalNative(): NativeBinding | null {
  return loaded.binding ?? null;
}

/** The addon, or an ERR_INTERPROCESS_NATIVE error naming the feature that needed it. */
export function requireNative(feature: string): NativeBinding {
  if (loaded.binding) return loaded.binding;
  throw new InterprocessError(
    'ERR_INTERPROCESS_NATIVE',
    `${feature} needs the interprocess native addon, which did not load: ${loaded.reason}. ` +
      `Reinstall the package so that its prebuilt binary for ${process.platform}-${process.arch} is present, ` +
      `or build it from source with 'npm explore interprocess -- node-gyp rebuild' (needs python3, make and a C compiler).`,
  );
}
