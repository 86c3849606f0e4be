// A child that handles SIGTERM, and a parent that sends it: run `node examples/signals.js`.
import { fork } from 'node:child_process';
import { onSignal, sendSignal } from 'interprocess';

if (process.argv[2] === 'child') {
  onSignal('SIGTERM', () => {
    console.log('child: got SIGTERM, shutting down cleanly');
    process.exit(0);
  });
  process.send('ready');
  setInterval(() => {}, 1000);
} else {
  const child = fork(new URL(import.meta.url).pathname, ['child']);
  child.once('message', () => sendSignal(child.pid, 'SIGTERM'));
  child.on('exit', (code, signal) => console.log(`parent: child exited with code ${code}, signal ${signal}`));
}
