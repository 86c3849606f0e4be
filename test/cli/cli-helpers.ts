// What the tests of the interprocess command share: the command itself, and socat as a peer.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const cli = fileURLToPath(new URL('../../../bin/interprocess.js', import.meta.url));

/** The command, started with these arguments. */
export const startCli = (args: string[], stdio: Parameters<typeof spawn>[2]['stdio'] = ['pipe', 'pipe', 'pipe']) => spawn(process.execPath, [cli, ...args], { stdio });

export const exited = (child: ChildProcess) => exitWithin(child, Infinity) as Promise<number | null>;

/** The exit code of a child, or 'still running' after `ms` (a generous bound: this detects a hang). */
export const exitWithin = (child: ChildProcess, ms: number) =>
  new Promise<number | null | 'still running'>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    const timer = ms === Infinity ? undefined : setTimeout(() => resolve('still running'), ms);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });

/** Resolves once `stream` has given text matching `pattern`, with all of it so far. */
export function waitFor(stream: NodeJS.ReadableStream, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (pattern.test(text)) {
        stream.off('data', onData);
        resolve(text);
      }
    };
    stream.on('data', onData);
    stream.once('end', () => reject(new Error(`the stream ended before ${pattern}: ${JSON.stringify(text)}`)));
  });
}

export const hasSocat = (() => {
  try {
    execFileSync('socat', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
