/**
 * A connect that returns the socket at once, as net.createConnection() does: what http's
 * `createConnection` option and an http.Agent need (they take a socket, not a Promise). It makes
 * one attempt in the background; its failure is an 'error' event on the socket (typed, worded as
 * connect()'s), never a throw at the event loop. For `wait`, `timeout` and `signal`, use connect().
 */
import { checkAllowHalfOpen, checkOptionsObject } from '../options.js';
import { isWindows } from '../platform.js';
import { connectError } from '../socket-connect.js';
import { type LocalSocketName, toName } from './name.js';
import { LocalSocket, connectedTo, setSocketName, socketOverPipe } from './stream.js';
import { optionalNative } from '../native/addon.js';
import { connectAbstract } from './unix/abstract.js';

/** Options of {@link createConnection}. */
export interface CreateConnectionOptions {
  /** Keep our writable side open after the peer ends its side (as net's `allowHalfOpen`); default false. */
  allowHalfOpen?: boolean;
}

/**
 * Connects to the listener at `name` (a path string, `'@NAME'` for nsName('NAME'), or a name from
 * fsName()/nsName()) and returns the socket at once, still connecting: it emits `'connect'` when
 * connected, or `'error'` (ENOENT or ECONNREFUSED when nothing listens there, ...) and `'close'`.
 * Writes made meanwhile wait for the connection. This is the form http takes:
 * `http.request({ createConnection: () => createConnection(name), path: '/' })`, or see
 * {@link LocalSocketAgent}. A bad name or option throws at once (a TypeError, as net's do). On
 * Windows the pipe is opened at once (our own client end, so `peerCredentials()` gives the
 * server's process id); while every instance is busy, Node's own pipe client waits for one, and
 * that socket has no process id.
 */
export function createConnection(name: string | LocalSocketName, options: CreateConnectionOptions = {}): LocalSocket {
  const resolved = toName(name);
  checkOptionsObject(options);
  checkAllowHalfOpen(options.allowHalfOpen);
  const allowHalfOpen = options.allowHalfOpen ?? false;
  if (!isWindows) {
    let direct: LocalSocket | null = null;
    try {
      direct = connectAbstract(resolved, allowHalfOpen);
    } catch (error) {
      // The native connect of a Node 20 abstract name fails at once: the same 'error' event.
      const failed = new LocalSocket({ allowHalfOpen });
      setSocketName(failed, resolved);
      process.nextTick(() => failed.destroy(connectError(error, resolved)));
      return failed;
    }
    if (direct !== null) {
      connectedTo(direct, resolved);
      process.nextTick(() => direct.emit('connect'));
      return direct;
    }
  }
  if (isWindows) {
    const opened = openPipeNow(resolved, allowHalfOpen);
    if (opened !== null) return opened;
  }
  const socket = new LocalSocket({ allowHalfOpen });
  setSocketName(socket, resolved);
  // While connecting, Node fails the socket through destroy(error): give that error our type and
  // words. Once connected (or failed), destroy is the prototype's again.
  socket.destroy = (error?: Error) => {
    const connecting = (error as NodeJS.ErrnoException | undefined)?.syscall === 'connect';
    return LocalSocket.prototype.destroy.call(socket, connecting ? connectError(error, resolved) : error);
  };
  const settled = () => {
    Reflect.deleteProperty(socket, 'destroy');
    socket.off('connect', onConnect);
    socket.off('close', settled);
  };
  const onConnect = () => {
    settled();
    connectedTo(socket, resolved);
  };
  socket.once('connect', onConnect);
  socket.once('close', settled);
  socket.connect({ path: resolved.address });
  return socket;
}

/**
 * Windows: one CreateFile now (it does not wait), so the socket is our pipe end and knows the
 * server's process id; a failure is the socket's 'error' event, as Node's client would give it.
 * null when every instance is busy: Node's client then waits for one (as net.connect() does).
 */
function openPipeNow(name: LocalSocketName, allowHalfOpen: boolean): LocalSocket | null {
  const native = optionalNative();
  if (native === null) return null;
  const c = native.namedPipe.constants;
  let socket: LocalSocket;
  try {
    socket = socketOverPipe(native.namedPipe.open(name.address, c.GENERIC_READ | c.GENERIC_WRITE, false), name, 'server', allowHalfOpen);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EBUSY') return null;
    const failed = new LocalSocket({ allowHalfOpen });
    setSocketName(failed, name);
    process.nextTick(() => failed.destroy(connectError(error, name)));
    return failed;
  }
  process.nextTick(() => socket.emit('connect'));
  return socket;
}
