import type net from 'node:net';

export type ListenTarget = net.ListenOptions | { fd: number; backlog?: number | undefined };

/** server.listen() as a Promise, with no event listener left behind either way. */
export function listenOn(server: net.Server, target: ListenTarget): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => {
      server.off('listening', onListening);
      reject(error);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    // Node reads the backlog of an `{ fd }` target from the second argument only (options.backlog
    // is ignored there), and listens again with it: without it, 511 replaces the one asked for.
    if ('fd' in target) server.listen({ fd: target.fd }, target.backlog ?? 511);
    else server.listen(target as net.ListenOptions);
  });
}
