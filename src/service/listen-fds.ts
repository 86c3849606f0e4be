/**
 * Socket activation: the descriptors a service manager (systemd, or anything speaking its
 * protocol: systemd-socket-activate, s6, ...) passes to the process it starts, from descriptor 3
 * on, described by LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES. Read as sd_listen_fds(3) reads them:
 * only if LISTEN_PID is this process, made close-on-exec, and the variables removed so that
 * children do not take the descriptors as theirs. Each is described (type, listening) so that it
 * can be adopted as the right object by the `fromFd` family.
 */
import { InterprocessError, invalidType } from '../errors.js';
import { requireNative } from '../native/addon.js';
import { isWindows } from '../platform.js';
import type { DescriptorKind } from '../unix-socket/descriptors.js';
import { describeFd, describeText, unixType } from './describe.js';

/** The first descriptor a service manager passes (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

/** One descriptor passed by the service manager, as {@link listenFds} found it. */
export interface ListenFd {
  /** The descriptor number (3, 4, ...). It stays open until you adopt it (then its object owns it) or close it. */
  readonly fd: number;
  /**
   * Its name from LISTEN_FDNAMES (a unit's `FileDescriptorName=`, the socket unit's name by
   * default, or `systemd-socket-activate --fdname`); `'unknown'` when none was passed, as systemd's
   * sd_listen_fds_with_names(3) says.
   */
  readonly name: string;
  /** What it is: 'socket', 'fifo', 'file', 'character-device', ... */
  readonly kind: DescriptorKind;
  /** For a Unix domain socket: 'stream', 'seqpacket' or 'datagram'; null for anything else (a TCP or UDP socket too). */
  readonly socketType: 'datagram' | 'seqpacket' | 'stream' | null;
  /** Whether it is a listening socket (a socket unit's `Accept=no` stream and seqpacket sockets are). */
  readonly listening: boolean;
  /** A readable description: "a listening Unix seqpacket socket", "a FIFO or pipe", ... */
  readonly description: string;
}

/** Options of {@link listenFds}. */
export interface ListenFdsOptions {
  /**
   * Remove LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES from the environment (default true, as
   * sd_listen_fds(1)), so that child processes do not take the descriptors as theirs. A second
   * call then finds none.
   */
  unsetEnvironment?: boolean;
}

const VARIABLES = ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'] as const;
// More than any manager passes (systemd caps a unit's descriptors far lower): a bigger count is a corrupt environment.
const MAX_FDS = 65536;

function invalid(message: string): InterprocessError {
  return new InterprocessError('EINVAL', `${message}. The service manager sets these variables; remove them if they were not meant for this process.`);
}

/**
 * The descriptors a service manager passed to this process for socket activation
 * (LISTEN_FDS, from descriptor 3 on), each with its name and what it is; an empty array when none
 * were passed to this process (LISTEN_PID unset or another process's id). Each descriptor is made
 * close-on-exec and stays open until you adopt it (`LocalSocketListener.fromFd()`,
 * `UnixListener.fromFd()`, `unixSocketFromFd()`, `PipeReceiver.fromFd()`) or close it. The
 * variables are removed (see {@link ListenFdsOptions.unsetEnvironment}), so call it once, in the
 * main thread. Fails with EINVAL for malformed variables, EBADF for a descriptor the variables
 * promise but that is not open. On Windows, where no descriptors are passed this way, it returns
 * an empty array when the variables are unset and fails with ERR_INTERPROCESS_UNSUPPORTED when
 * they are set.
 */
export function listenFds(options: ListenFdsOptions = {}): ListenFd[] {
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
  if (options.unsetEnvironment !== undefined && typeof options.unsetEnvironment !== 'boolean') throw invalidType('options.unsetEnvironment', 'a boolean', options.unsetEnvironment);
  const unset = options.unsetEnvironment ?? true;
  const env = { pid: process.env.LISTEN_PID, fds: process.env.LISTEN_FDS, names: process.env.LISTEN_FDNAMES };
  try {
    return read(env);
  } finally {
    if (unset) for (const variable of VARIABLES) delete process.env[variable];
  }
}

function read(env: { pid: string | undefined; fds: string | undefined; names: string | undefined }): ListenFd[] {
  if (env.pid === undefined) return [];
  if (isWindows) {
    throw new InterprocessError('ERR_INTERPROCESS_UNSUPPORTED', 'Socket activation (LISTEN_PID and LISTEN_FDS) is not supported on win32: Windows processes do not inherit descriptors by number. Use listen() or listenNamedPipe() there.');
  }
  if (!/^[1-9][0-9]{0,9}$/.test(env.pid)) throw invalid(`LISTEN_PID is not a process id: '${env.pid}'`);
  if (Number(env.pid) !== process.pid) return []; // for another process (our parent, say)
  if (env.fds === undefined) return [];
  if (!/^[0-9]{1,6}$/.test(env.fds) || Number(env.fds) > MAX_FDS) throw invalid(`LISTEN_FDS is not a count of descriptors: '${env.fds}'`);
  const count = Number(env.fds);
  let names: string[] | null = null;
  if (env.names !== undefined) {
    names = env.names.split(':');
    if (names.length !== count) throw invalid(`LISTEN_FDNAMES names ${names.length} descriptors ('${env.names}') but LISTEN_FDS says ${count}`);
  }
  const native = requireNative('Socket activation');
  const found: ListenFd[] = [];
  for (let i = 0; i < count; i++) {
    const fd = LISTEN_FDS_START + i;
    const d = describeFd(fd, `Socket activation (LISTEN_FDS=${count})`);
    native.setCloexec(fd, true);
    found.push(Object.freeze({
      fd,
      name: names?.[i] || 'unknown',
      kind: d.kind,
      socketType: unixType(d),
      listening: d.listening,
      description: describeText(d),
    }));
  }
  return found;
}
