/**
 * Loads the native core: a prebuilt binary for this platform first, a local build second
 * (node-gyp-build). The addon is optional at run time: if it cannot load, everything Node core
 * can do still works, and each native-only call throws ERR_INTERPROCESS_NATIVE saying why.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { InterprocessError } from '../errors.js';

/** Readiness watcher over a descriptor (uv_poll on Node's own loop). */
export interface NativeWatcher {
  start(events: number): void;
  stop(): void;
  close(): void;
  ref(keepAlive: boolean): void;
}

/** What the native addon exports. Every function throws a system error on failure. */
export interface NativeBinding {
  readonly napiVersion: number;
  readonly Watcher: new (fd: number, callback: (status: number, events: number) => void) => NativeWatcher;
  readonly pollEvents: { readonly READABLE: number; readonly WRITABLE: number; readonly DISCONNECT: number };
  peerCredentials(fd: number): { pid: number; uid: number; gid: number };
  tryLock(fd: number): boolean;
  /** Linux: a listening socket bound to the abstract name with its exact length. */
  abstractListen(name: Buffer, backlog: number): number;
  /** Linux: a socket connected to the abstract name with its exact length. */
  abstractConnect(name: Buffer): number;
  /** A pipe pair [read, write], both close-on-exec and non-blocking. */
  pipe(): number[];
  /** Sets (if given) and returns a pipe's buffer size; -1 where the OS has no such control. */
  pipeSize(fd: number, size?: number): number;
  mkfifo(path: string, mode: number): void;
  setCloexec(fd: number, on: boolean): void;
  setNonblocking(fd: number, on: boolean): void;
  /** A close-on-exec duplicate of fd. */
  dupCloexec(fd: number): number;
  /** Blocks until fd is readable (or writable), or the timeout passes (-1: none); false on timeout. */
  waitFd(fd: number, writable: boolean, timeoutMs: number): boolean;
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
    return { binding: nodeGypBuild(packageRoot) };
  } catch (error) {
    return { reason: (error as Error)?.message ?? String(error) };
  }
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
      `or build it from source with 'npm rebuild interprocess' (needs python3, make and a C compiler).`,
  );
}
