import type net from 'node:net';

/** server.listen() on a path or pipe name as a Promise, with no listener left behind either way. */
export function listenOn(server: net.Server, address: string, backlog: number | undefined): Promise<void> {
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
    server.listen({ path: address, backlog });
  });
}
