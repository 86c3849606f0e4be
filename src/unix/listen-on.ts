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
    server.listen(target as net.ListenOptions);
  });
}
