// Hands one end of a pipe to a child at descriptor 3, then streams to it: run
// `node examples/pipe-to-child.js`. The child turns descriptor 3 back into a stream.
import { spawnWith, pipe, PipeReceiver } from 'interprocess';

if (process.argv[2] === 'child') {
  const input = PipeReceiver.fromFd(3);
  let text = '';
  for await (const chunk of input) text += chunk;
  console.log(`child read: ${text}`);
} else {
  const { sender, receiver } = pipe();
  const child = spawnWith(process.execPath, [new URL(import.meta.url).pathname, 'child'], { fds: { 3: receiver }, stdio: 'inherit' });
  sender.end('a pipe made by interprocess');
  child.on('exit', (code) => console.log(`child exited with ${code}`));
}
