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
import { LocalSocket, connectedTo, setSocketName } from './stream.js';
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
 * Windows the socket is Node's own pipe client, without the server's process id.
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
