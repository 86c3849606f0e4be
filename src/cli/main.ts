/**
 * The `interprocess` command: info, listen, connect, bench. Exit codes: 0 success, 1 failure
 * (the message says what and why), 2 bad usage. The command line is parsed whole (args.ts), then
 * run (commands.ts); every call into the library goes through library.ts.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Command, parseCommandLine, UsageError } from './args.js';
import { bench, connect, info, listen } from './commands.js';

const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

function version(): string {
  return (JSON.parse(fs.readFileSync(`${packageRoot}package.json`, 'utf8')) as { version: string }).version;
}

function run(command: Command): Promise<void> | void {
  switch (command.command) {
    case 'help':
      return void console.log(command.text);
    case 'version':
      return void console.log(version());
    case 'info':
      return info(command);
    case 'listen':
      return listen(command);
    case 'connect':
      return connect(command);
    case 'bench':
      return bench(command, packageRoot);
  }
}

export async function main(argv: string[]): Promise<number> {
  const name = ['info', 'listen', 'connect', 'bench'].includes(argv[0] ?? '') ? `interprocess ${argv[0]}` : 'interprocess';
  try {
    await run(parseCommandLine(argv));
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`${name}: ${error.message}`);
      return 2;
    }
    const e = error as { code?: string; message?: string };
    // The library's hints name its options; here the same thing is a flag.
    const message = (e.message ?? String(error)).replace(/\{ wait: true \}/g, '--wait');
    console.error(`${name}: ${e.code ? `${e.code}: ` : ''}${message}`);
    return 1;
  }
}
